"""SRNN: the generative model p(x, z | u) and the inference network q(z | x, u).

Fraccaro et al. 2016, section 3 and FACTS.md section 1. Shapes use B (batch), T (steps),
K (importance samples) and the paper's names: u_t = x_{t-1}, d_t deterministic state,
z_t latent state, a_t the inference network's summary of x_{t:T}.

Only the z-chain is sequential. phi, the d GRU and the backward a GRU run over the whole
sequence at once; the parts of the prior/posterior first layers that depend on d_t and
a_t are computed for all steps before the loop; the prior log-variance, the emission, the
KL and the likelihood are computed after the loop in one batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config, ConfigError
from ..datasets.batching import shifted_input

VAR_FLOOR = 1e-6       # var = exp(logvar) + 1e-6 for prior and posterior (original code)
BERNOULLI_EPS = 1e-7   # log(p + eps), log(1 - p + eps) (original code)
LOG_2PI = math.log(2 * math.pi)


def act(h: torch.Tensor) -> torch.Tensor:
    """The paper's nonlinearity: leaky ReLU with slope 1/3, clipped to [-3, 3]."""
    return torch.clamp(F.leaky_relu(h, 1 / 3), -3.0, 3.0)


def dropout(h: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout while training; nothing (and no random draw) when p is 0."""
    return F.dropout(h, p, training) if p > 0 else h


def std(logvar: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(torch.exp(logvar) + VAR_FLOOR)


def gaussian_log_prob(x, mu, logvar):
    """log N(x; mu, exp(logvar)), summed over the last axis (no floor: the speech output)."""
    return -0.5 * (LOG_2PI + logvar + (x - mu) ** 2 * torch.exp(-logvar)).sum(-1)


def floored_log_prob(z, mu, logvar):
    """log N(z; mu, exp(logvar) + 1e-6), summed over the last axis (prior and posterior)."""
    var = torch.exp(logvar) + VAR_FLOOR
    return -0.5 * (LOG_2PI + torch.log(var) + (z - mu) ** 2 / var).sum(-1)


def gaussian_kl(mu_q, logvar_q, mu_p, logvar_p):
    """KL(N(mu_q, var_q) || N(mu_p, var_p)) per dimension, both variances floored."""
    var_q, var_p = torch.exp(logvar_q) + VAR_FLOOR, torch.exp(logvar_p) + VAR_FLOOR
    return 0.5 * (torch.log(var_p) - torch.log(var_q) + (var_q + (mu_q - mu_p) ** 2) / var_p - 1)


class MLP(nn.Module):
    """Dense layers, each followed by the clipped leaky ReLU."""

    def __init__(self, in_dim: int, hidden: int, layers: int):
        super().__init__()
        sizes = [in_dim] + [hidden] * layers
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.out_dim = sizes[-1]

    def forward(self, h):
        for layer in self.layers:
            h = act(layer(h))
        return h


class GaussianHead(nn.Module):
    """N(mu, var) over z_t from [c_t, z_{t-1}]: one one-hidden-layer MLP for mu and one for
    log var. c_t is d_t for the prior p(z_t | z_{t-1}, d_t) and a_t for the posterior
    q(z_t | z_{t-1}, a_t). The two hidden layers are stored side by side in ``hidden``.
    ``prev_dim``: the size of the input that changes inside the loop, z_{t-1} unless given
    (the VRNN's heads read h_{t-1} there, or nothing)."""

    def __init__(self, c_dim: int, z_dim: int, hidden: int, prev_dim: int | None = None):
        super().__init__()
        self.c_dim, self.n = c_dim, hidden
        self.hidden = nn.Linear(c_dim + (z_dim if prev_dim is None else prev_dim), 2 * hidden)
        self.mu = nn.Linear(hidden, z_dim)
        self.logvar = nn.Linear(hidden, z_dim)

    def forward(self, *inputs):
        """Plain form: (mu, logvar) from the concatenation of the inputs, [c, z_prev]."""
        return self.from_hidden(act(self.hidden(torch.cat(inputs, -1))))

    def c_part(self, c):
        """The c-dependent part of the hidden pre-activation, for all steps at once."""
        return F.linear(c, self.hidden.weight[:, :self.c_dim], self.hidden.bias)

    def z_weight(self):
        return self.hidden.weight[:, self.c_dim:]

    def from_hidden(self, h):
        return self.mu(h[..., :self.n]), self.logvar(h[..., self.n:])

    def split(self, c_pre, z_prev):
        """(mu, logvar) from a precomputed ``c_part`` and z_{t-1}: the same function."""
        return self.from_hidden(act(c_pre + F.linear(z_prev, self.z_weight())))


class Emission(nn.Module):
    """p(x_t | z_t, d_t): an MLP on [d_t, z_t], then Bernoulli logits (music) or a
    factorized Gaussian with linear mean and linear log-variance (speech). ``in_dim``: the
    size of the concatenated inputs when they are not [d_t, z_t] (the baselines').

    The baselines' ``gmm`` output (Chung et al. 2015): K components, each a factorized
    Gaussian over the whole frame with its own linear mean and log-variance, mixed by
    softmax weights, p(x_t) = sum_k pi_k prod_i N(x_ti; mu_ki, var_ki)."""

    def __init__(self, cfg: Config, in_dim: int | None = None):
        super().__init__()
        self.gaussian, self.mixture = cfg.output == "gaussian", cfg.output == "gmm"
        self.mlp = MLP(cfg.d_dim + cfg.z_dim if in_dim is None else in_dim, cfg.mlp_dim, cfg.emission_layers)
        k = cfg.gmm_components
        # The output layer's parts, stored side by side: means and log-variances, then the weights' logits.
        self.parts = [k * cfg.x_dim] * 2 + [k] if self.mixture else [cfg.x_dim] * (2 if self.gaussian else 1)
        self.out = nn.Linear(self.mlp.out_dim, sum(self.parts))

    def forward(self, *inputs):
        """The output layer's parameters from the concatenated inputs, [d_t, z_t] for SRNN."""
        return self.out(self.mlp(torch.cat(inputs, -1)))

    def components(self, params):
        """A mixture's means and log-variances (..., K, x_dim) and log-weights (..., K)."""
        mu, logvar, logits = params.split(self.parts, -1)
        k = logits.shape[-1]
        return mu.unflatten(-1, (k, -1)), logvar.unflatten(-1, (k, -1)), torch.log_softmax(logits, -1)

    def log_prob(self, params, x):
        if self.mixture:
            mu, logvar, log_pi = self.components(params)
            return torch.logsumexp(log_pi + gaussian_log_prob(x.unsqueeze(-2), mu, logvar), -1)
        if self.gaussian:
            mu, logvar = params.chunk(2, -1)
            return gaussian_log_prob(x, mu, logvar)
        p = torch.sigmoid(params)
        return (x * torch.log(p + BERNOULLI_EPS) + (1 - x) * torch.log(1 - p + BERNOULLI_EPS)).sum(-1)

    def sample(self, params, mean_only: bool = False):
        if self.mixture:
            mu, logvar, log_pi = self.components(params)
            if mean_only:
                return (log_pi.exp().unsqueeze(-1) * mu).sum(-2)
            k = torch.distributions.Categorical(logits=log_pi).sample()[..., None, None]
            k = k.expand(*mu.shape[:-2], 1, mu.shape[-1])
            mu, logvar = mu.gather(-2, k).squeeze(-2), logvar.gather(-2, k).squeeze(-2)
            return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        if self.gaussian:
            mu, logvar = params.chunk(2, -1)
            return mu if mean_only else mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        p = torch.sigmoid(params)
        return p if mean_only else torch.bernoulli(p)


@dataclass
class State:
    """What the next window needs: d_T (B, d_dim) and the last sample z_T (K*B, z_dim)."""

    d: torch.Tensor
    z: torch.Tensor

    def detach(self) -> State:
        return State(self.d.detach(), self.z.detach())


@dataclass
class Output:
    """Per-step terms, (K*B, T), zero at masked steps; row k*B + b is sample k of sequence b.

    ll = log p(x_t | z_t, d_t); kl = KL(q(z_t | z_{t-1}, a_t) || p(z_t | z_{t-1}, d_t));
    log_w = ll + log p(z_t | .) - log q(z_t | .) at the sampled z_t (for importance weights).
    Every model returns one (the baselines with their own densities and state type).
    """

    ll: torch.Tensor
    kl: torch.Tensor
    log_w: torch.Tensor
    kl_dim: torch.Tensor    # (K*B, T, z_dim): the KL per latent dimension
    z: torch.Tensor         # (K*B, T, z_dim): the posterior sample path
    state: State            # the model's own state type (``model.state_type``)


def latent_output(ll, z_seq, mu_q, logvar_q, mu_p, logvar_p, m_k, state) -> Output:
    """The Output of a model with one Gaussian latent z_t per step, from ll (K*B, T), the
    sample path and the posterior's and prior's parameters (K*B, T, z_dim) and the mask."""
    kl_dim = gaussian_kl(mu_q, logvar_q, mu_p, logvar_p) * m_k[..., None]
    log_w = ll + floored_log_prob(z_seq, mu_p, logvar_p) - floored_log_prob(z_seq, mu_q, logvar_q)
    return Output(ll=ll * m_k, kl=kl_dim.sum(-1), log_w=log_w * m_k, kl_dim=kl_dim, z=z_seq, state=state)


def compiled(step, cfg: Config):
    """A model's z-chain step, through torch.compile when ``cfg.compile`` (one graph, fused
    elementwise work; a new shape compiles once more), as it is otherwise."""
    return torch.compile(step, fullgraph=True) if cfg.compile else step


def initialize(model: nn.Module, normal=()) -> None:
    """Every model's initialization (see ``SRNN.reset_parameters``): Glorot-normal for the
    modules in ``normal``, Glorot-uniform for the other dense weights. The layers stored side
    by side (a head's two hidden layers, a Gaussian emission's mean and log-variance) are each
    drawn on their own shape; the last layers of every head and emission are the small ones."""
    normal = {id(p) for m in normal if m is not None for p in m.parameters()}
    heads = [m for m in model.modules() if isinstance(m, GaussianHead)]
    emissions = [m for m in model.modules() if isinstance(m, Emission)]
    side_by_side = {id(m.hidden.weight): [m.n, m.n] for m in heads}
    side_by_side.update({id(m.out.weight): m.parts for m in emissions})
    for name, p in model.named_parameters():
        if name.endswith("bias") or "bias_" in name:
            nn.init.zeros_(p)
        elif "gru" in name:
            for gate in p.data.chunk(3, 0):
                nn.init.orthogonal_(gate)
        elif model.cfg.init == "stacked":
            nn.init.xavier_normal_(p)
        else:
            glorot = nn.init.xavier_normal_ if id(p) in normal else nn.init.xavier_uniform_
            for layer in p.data.split(side_by_side.get(id(p), [len(p)]), 0):
                glorot(layer)
    if model.cfg.small_last_init:
        for layer in [layer for m in heads for layer in (m.mu, m.logvar)] + [m.out for m in emissions]:
            nn.init.uniform_(layer.weight, -1e-3, 1e-3)


def lasagne_grus(model: nn.Module, cfg: Config) -> None:
    """Lasagne's GRU: r * (W_hn h), no b_hn inside the reset gate: the hidden-side biases of
    the modules named gru_* stay zero (not trained) unless ``gru_hidden_bias``."""
    if not cfg.gru_hidden_bias:
        for name, p in model.named_parameters():
            if name.startswith("gru_") and "bias_hh" in name:
                p.requires_grad_(False)


def check_model(cfg: Config, name: str) -> None:
    if cfg.model != name:
        raise ConfigError(f"a config of model {cfg.model!r} cannot build {name!r}: "
                          f"use srnn.models.baselines.build_model")


def check_inputs(model: nn.Module, x, u, mask, state, samples: int, noise, z_dim: int) -> tuple[int, int]:
    """(B, T) of inputs that ``model.forward`` accepts; a clear error for anything else.
    ``z_dim``: the size of the latent noise per step (0 for a model without one)."""
    cfg = model.cfg
    if not (torch.is_tensor(x) and torch.is_tensor(u)) or x.dim() != 3 or x.shape != u.shape:
        raise ValueError(f"x and u must be tensors of one shape (batch, steps, {cfg.x_dim}); "
                         f"got {getattr(x, 'shape', type(x))} and {getattr(u, 'shape', type(u))}")
    B, T, D = x.shape
    if cfg.x_dim != D:
        raise ValueError(f"x has {D} features per step but the model expects x_dim={cfg.x_dim}")
    dtype = model.emission.out.weight.dtype
    if x.dtype != dtype or u.dtype != dtype:
        raise TypeError(f"x and u are {x.dtype}/{u.dtype} but the model is {dtype}: "
                        f"convert the data with .to({dtype}) (or the model with .to(dtype))")
    if mask is not None:
        if mask.shape != (B, T):
            raise ValueError(f"mask must be (batch, steps) = {(B, T)}, got {tuple(mask.shape)}")
        # Its values only where reading them costs no synchronization with a GPU; the batches
        # of srnn.datasets.batching are built valid.
        if mask.device.type == "cpu" and (((mask != 0) & (mask != 1)).any() or (mask[:, 1:] > mask[:, :-1]).any()):
            raise ValueError("mask must hold ones for real steps followed by zeros for padding")
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if state is not None:
        expected = model.initial_state(B, samples)
        shapes = lambda s: ", ".join(f"{k} {tuple(v.shape)}" for k, v in vars(s).items())
        if type(state) is not type(expected) or shapes(state) != shapes(expected):
            raise ValueError(f"state has {shapes(state)}; expected a {type(expected).__name__} with {shapes(expected)}")
    if noise is not None and noise.shape != (T, samples * B, z_dim):
        raise ValueError(f"noise must be (steps, samples*batch, z_dim) = "
                         f"{(T, samples * B, z_dim)}, got {tuple(noise.shape)}")
    return B, T


def generation_start(model: nn.Module, batch_size: int, prefix_x: torch.Tensor | None):
    """The state and the last frame x that generation continues: inferred from a prefix
    (B, T0, x_dim) by one pass over it, or zeros."""
    if prefix_x is not None:
        return model(prefix_x, shifted_input(prefix_x)).state, prefix_x[:, -1]
    return model.initial_state(batch_size), model.emission.out.weight.new_zeros(batch_size, model.cfg.x_dim)


def reverse_padded(h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row's first ``lengths[b]`` steps along dim 1, leaving padding in place."""
    t = torch.arange(h.shape[1], device=h.device)
    idx = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
    return h.gather(1, idx[:, :, None].expand_as(h))


class SRNN(nn.Module):
    state_type = State

    def __init__(self, cfg: Config):
        super().__init__()
        check_model(cfg, "srnn")
        self.cfg, self.noise_dim = cfg, cfg.z_dim                      # noise: one draw per latent unit
        self.phi = MLP(cfg.x_dim, cfg.mlp_dim, cfg.phi_layers)        # shared by u_t and x_t
        f = self.phi.out_dim
        self.gru_d = nn.GRU(f, cfg.d_dim, batch_first=True)           # d_t = GRU(d_{t-1}, phi(u_t))
        if cfg.inference == "smoothing":                               # a_t = GRU(a_{t+1}, [d_t, phi(x_t)])
            self.gru_a = nn.GRU(cfg.d_dim + f, cfg.d_dim, batch_first=True)
        else:                                                          # a_t = MLP([d_t, phi(x_t)])
            self.mlp_a = MLP(cfg.d_dim + f, cfg.d_dim, cfg.filter_layers)
        self.prior = GaussianHead(cfg.d_dim, cfg.z_dim, cfg.mlp_dim)
        self.posterior = GaussianHead(cfg.d_dim, cfg.z_dim, cfg.mlp_dim)
        self.emission = Emission(cfg)
        self.reset_parameters()
        lasagne_grus(self, cfg)
        self.step = compiled(self.chain_step, cfg)

    def reset_parameters(self):
        """Zero biases and orthogonal GRU matrices (each gate's own), and the dense weights
        as the original code draws them (``init="original"``): Glorot-uniform, Lasagne's
        default, for phi, the prior and posterior heads and the emission's output layer;
        Glorot-normal, the original's ``mlp`` helper, for the emission MLP and the filtering
        MLP. Layers the original keeps apart and this model stores side by side (a head's
        mean and log-variance hidden layers, the Gaussian emission's mean and log-variance)
        are each drawn on their own shape. Speech (``small_last_init``): Uniform(-1e-3, 1e-3)
        output layers of prior, posterior and emission. ``init="stacked"``: Glorot-normal on
        every stored weight as it is (this project's first protocol)."""
        initialize(self, normal=(self.emission.mlp, getattr(self, "mlp_a", None)))

    def initial_state(self, batch_size: int, samples: int = 1) -> State:
        w = self.prior.mu.weight
        return State(w.new_zeros(batch_size, self.cfg.d_dim),
                     w.new_zeros(samples * batch_size, self.cfg.z_dim))

    def forward(self, x, u, mask=None, state: State | None = None, samples: int = 1,
                noise: torch.Tensor | None = None) -> Output:
        """One pass over a window. x, u: (B, T, x_dim); mask: (B, T), ones then zeros;
        state from the previous window (None: zeros); noise: (T, K*B, z_dim) standard
        normal draws (None: fresh ones)."""
        B, T = check_inputs(self, x, u, mask, state, samples, noise, self.cfg.z_dim)
        mask = x.new_ones(B, T) if mask is None else mask.to(x.dtype)
        state = self.initial_state(B, samples) if state is None else state
        return self.z_chain(self.observed(x, u, mask, state.d), state.z, samples, noise)

    def sample_groups(self, x, u, mask, states: list[State | None], groups: list[int]) -> list[Output]:
        """One Output per group of importance samples of one window (``groups[g]`` samples,
        continuing ``states[g]``), as ``forward`` gives it for each group, but with the
        observed path (phi, both GRUs, the first layers' d and a parts) computed once: the
        importance-weighted bound of a long sequence takes many groups."""
        B, T = check_inputs(self, x, u, mask, states[0], groups[0], None, self.cfg.z_dim)
        mask = x.new_ones(B, T) if mask is None else mask.to(x.dtype)
        states = [self.initial_state(B, k) if s is None else s for s, k in zip(states, groups)]
        paths = self.observed(x, u, mask, states[0].d)
        return [self.z_chain(paths, s.z, k, None) for s, k in zip(states, groups)]

    def observed(self, x, u, mask, d0) -> dict:
        """Everything that depends only on observed data, over the whole window at once: d_t
        and the parts of the posterior's and prior's first layers that depend on a_t and d_t.
        Dropout (off by default) acts where the original's does: on the features, and on d_t
        where it leaves the recurrence (one mask for a_t, the prior and the emission)."""
        cfg, B = self.cfg, x.shape[0]
        phi_u, phi_x = self.phi(torch.cat([u, x])).split(B)
        d, d_last = self.gru_d(dropout(phi_u, cfg.drop_phi_u, self.training), d0[None].contiguous())
        d = dropout(d, cfg.drop_d, self.training)
        dx = torch.cat([d, dropout(phi_x, cfg.drop_phi_x, self.training)], -1)
        if cfg.inference == "smoothing":
            lengths = mask.sum(1).long()
            a = reverse_padded(self.gru_a(reverse_padded(dx, lengths))[0], lengths)
        else:
            a = self.mlp_a(dx)
        pre, pre_p = self.posterior.c_part(a), self.prior.c_part(d)
        if cfg.resq:
            pre = torch.cat([pre, pre_p[..., :cfg.mlp_dim]], -1)
        return {"x": x, "mask": mask, "d": d, "d_last": d_last[0], "pre": pre, "pre_p": pre_p}

    def z_chain(self, paths: dict, z0, samples: int, noise) -> Output:
        """The z-chain over the ``observed`` paths for ``samples`` samples from z_0 = ``z0``,
        then the prior, emission, KL and likelihood."""
        cfg, K, x, d = self.cfg, samples, paths["x"], paths["d"]
        B, T = x.shape[:2]
        w_z = self.posterior.z_weight()
        if cfg.resq:
            w_z = torch.cat([w_z, self.prior.z_weight()[:cfg.mlp_dim]])
        # One tensor per step: indexing pre[t] would make the backward pass add T full-size
        # zero gradients (a third of a music update's time), unbind's backward stacks them.
        pre = paths["pre"].transpose(0, 1).repeat(1, K, 1).unbind(0)
        eps = torch.randn(T, K * B, cfg.z_dim, dtype=x.dtype, device=x.device) if noise is None else noise

        # The z-chain: z_t ~ q(z_t | z_{t-1}, a_t), the only sequential loop.
        z, zs, mus, logvars = z0, [], [], []
        for t in range(T):
            z, mu, logvar = self.step(pre[t], z, w_z, eps[t])
            zs.append(z), mus.append(mu), logvars.append(logvar)
        z_seq = torch.stack(zs, 1)                                     # (K*B, T, z)
        mu_q, logvar_q = torch.stack(mus, 1), torch.stack(logvars, 1)

        # After the loop, in one batch: prior, emission, KL and likelihood.
        z_prev = torch.cat([z0[:, None], z_seq[:, :-1]], 1)
        d_k, x_k, m_k = d.repeat(K, 1, 1), x.repeat(K, 1, 1), paths["mask"].repeat(K, 1)
        mu_p, logvar_p = self.prior.split(paths["pre_p"].repeat(K, 1, 1), z_prev)
        ll = self.emission.log_prob(self.emission(d_k, dropout(z_seq, cfg.drop_z, self.training)), x_k)
        return latent_output(ll, z_seq, mu_q, logvar_q, mu_p, logvar_p, m_k, State(paths["d_last"], z))

    def chain_step(self, pre_t, z, w_z, eps_t):
        """One step of the z-chain from z_{t-1} = ``z``: (z_t, mu_q, logvar_q)."""
        n = 2 * self.cfg.mlp_dim
        h = act(torch.addmm(pre_t, z, w_z.t()))
        mu, logvar = self.posterior.from_hidden(h[:, :n])
        if self.cfg.resq:
            mu = mu + self.prior.mu(h[:, n:])
        return mu + std(logvar) * eps_t, mu, logvar

    @torch.no_grad()
    def generate(self, steps: int, batch_size: int = 1, prefix_x: torch.Tensor | None = None,
                 mean_output: bool = False) -> torch.Tensor:
        """Sample x_{1:steps} from p, stepping d on the model's own samples. With a prefix
        (B, T0, x_dim) the state is first inferred from it and generation continues it.
        ``mean_output`` feeds back the emission mean instead of a sample."""
        state, x = generation_start(self, batch_size, prefix_x)
        d, z, out = state.d, state.z, []
        for _ in range(steps):
            d = self.gru_d(self.phi(x)[:, None], d[None].contiguous())[1][0]
            mu, logvar = self.prior(d, z)
            z = mu + std(logvar) * torch.randn_like(mu)
            x = self.emission.sample(self.emission(d, z), mean_only=mean_output)
            out.append(x)
        return torch.stack(out, 1)
