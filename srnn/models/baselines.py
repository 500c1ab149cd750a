"""The paper's baselines with SRNN's interfaces: VRNN (Chung et al. 2015) and an RNN.

Notes, in the manner of FACTS.md: what comes from where.

From Chung, Kastner, Dinh, Goel, Courville, Bengio, "A Recurrent Latent Variable Model for
Sequential Data", NIPS 2015, section 3 (the VRNN):
- prior p(z_t | h_{t-1}) = N(mu_0, var_0), both from a network on h_{t-1};
- emission p(x_t | z_t, h_{t-1}), from a network on [phi_z(z_t), h_{t-1}];
- recurrence h_t = f(h_{t-1}, [phi_x(x_t), phi_z(z_t)]): the latent sample is fed back;
- posterior q(z_t | x_t, h_{t-1}), from a network on [phi_x(x_t), h_{t-1}];
- phi_x is one network, applied to x_t both in the recurrence and in the posterior;
- the bound: sum_t [log p(x_t | z_t, h_{t-1}) - KL(q || p)], the KL in closed form;
- VRNN-I ("VRNN-I-Gauss" in their Table 1): the prior N(0, I), independent across steps.

Our choices, so that SRNN, VRNN and RNN differ only in how they use a latent state (like
for like with srnn/models/model.py and FACTS.md section 1, not Chung et al.'s settings):
- f is a GRU, the cell of SRNN's d_t and a_t (Chung et al. used LSTMs).
- The recurrence step that reads x_{t-1} and z_{t-1} is taken at step t, from the input
  u_t = x_{t-1}: h_{t-1} = GRU(h_{t-2}, [phi_x(u_t), phi_z(z_{t-1})]). So the three models
  read the same inputs in every protocol (u_1 from the data: zero at a sequence start, the
  previous frame where a row continues), and a window hands on (h_{T-1}, z_T). At a
  sequence start this gives h_0 = GRU(0, [phi_x(0), phi_z(0)]), a learned constant, as
  SRNN's d_1 = GRU(0, phi(0)); Chung et al. start from h_0 = 0.
- phi_x is SRNN's phi (phi_layers dense layers of mlp_dim units); phi_z one dense layer.
- The prior and the posterior are SRNN's heads: for the mean and for the log variance one
  one-hidden-layer MLP each, mlp_dim units, variance exp(log var) + 1e-6 (Chung et al.:
  softplus standard deviations). VRNN-I's N(0, I) goes through the same floored formulas,
  variance 1 + 1e-6.
- The emission is SRNN's (emission_layers dense layers; Bernoulli with eps 1e-7 for music,
  factorized Gaussian with a linear, unfloored log variance for speech). The GMM output of
  Chung et al.'s speech rows (VRNN-GMM, RNN-GMM; ``output="gmm"``): 20 components, each a
  factorized Gaussian over the whole frame, mixed by softmax weights (their code's num_k = 20,
  one weight per component and frame); linear log variances as our Gaussian's (Chung et al.:
  softplus standard deviations). Their presets keep the Gaussian baselines' sizes, so the
  mixture's output layer makes them larger than SRNN (tests/test_baselines.py prints it).
- Dropout (off by default) is placed as SRNN's (the original's p_d_drop and p_z_drop): one
  mask on h_{t-1} wherever it feeds the prior, the posterior and the emission (not the
  recurrence, as SRNN's d_t is dropped after its GRU), and one on z_t where it feeds the
  emission (before phi_z; the recurrence reads the undropped z_t). ``drop_d`` and ``drop_z``
  set them, so that the two models share one dropout grid.
- The nonlinearity is SRNN's leaky ReLU of slope 1/3 clipped to [-3, 3] (Chung et al.: ReLU).
- Initialization as SRNN's like layers (srnn.models.model.initialize): zero biases, orthogonal GRU
  gates, Glorot-uniform for phi_x, phi_z, the heads and the output layer, Glorot-normal for
  the emission MLP, Uniform(-1e-3, 1e-3) last layers with small_last_init (speech).
- The RNN is SRNN's deterministic path with the emission on it: h_t = GRU(h_{t-1}, phi(u_t)),
  p(x_t | x_{<t}) = p(x_t | h_t). Its log-likelihood is exact: KL 0, and log_w = ll, so its
  importance-weighted bound is its log-likelihood.
- Sizes: the presets (config.BASELINE_PRESETS) keep SRNN's mlp_dim, z_dim, layers and training
  settings and widen the GRU until the parameter count is SRNN's (the supplementary sized
  SRNN "to roughly match the number of parameters" of the VRNN).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config, ConfigError
from .model import (
    MLP,
    SRNN,
    Emission,
    GaussianHead,
    Output,
    act,
    check_inputs,
    check_model,
    compiled,
    generation_start,
    initialize,
    lasagne_grus,
    latent_output,
    std,
)


@dataclass
class VRNNState:
    """What the next window needs, per sample (h depends on the sampled z): h_{T-1}, which
    has not read x_T yet (K*B, d_dim), and the last sample z_T (K*B, z_dim)."""

    h: torch.Tensor
    z: torch.Tensor

    def detach(self) -> VRNNState:
        return VRNNState(self.h.detach(), self.z.detach())


@dataclass
class RNNState:
    """h_T (B, d_dim): the same for every sample."""

    h: torch.Tensor

    def detach(self) -> RNNState:
        return RNNState(self.h.detach())


def gru_step(gi: torch.Tensor, h: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor | None) -> torch.Tensor:
    """torch's GRU cell (hidden-side weights and bias ``w_hh``, ``b_hh``), given the input side
    gi = W_i x + b_i (rows, 3 units): reset gate r, update gate s, candidate
    n = tanh(gi_n + r (W_hn h + b_hn)), new state (1 - s) n + s h."""
    gh = F.linear(h, w_hh, b_hh)
    n = h.shape[-1]
    r, s = torch.sigmoid(gi[:, :2 * n] + gh[:, :2 * n]).chunk(2, -1)
    cand = torch.tanh(gi[:, 2 * n:] + r * gh[:, 2 * n:])
    return cand + s * (h - cand)


class VRNN(nn.Module):
    """h_t = GRU(h_{t-1}, [phi_x(x_t), phi_z(z_t)]); p(z_t | h_{t-1}); q(z_t | x_t, h_{t-1});
    p(x_t | z_t, h_{t-1}). d_dim GRU units, z_dim latent units, mlp_dim units per dense layer."""

    state_type = VRNNState

    def __init__(self, cfg: Config):
        super().__init__()
        check_model(cfg, "vrnn")
        self.cfg, self.noise_dim, m = cfg, cfg.z_dim, cfg.mlp_dim
        self.phi = MLP(cfg.x_dim, m, cfg.phi_layers)                   # phi_x, on u_t = x_{t-1} and on x_t
        self.phi_z = MLP(cfg.z_dim, m, 1)
        f = self.phi.out_dim
        self.gru_h = nn.GRU(f + m, cfg.d_dim, batch_first=True)        # on [phi_x(x), phi_z(z)]
        self.prior = GaussianHead(cfg.d_dim, cfg.z_dim, m, prev_dim=0) if cfg.vrnn_prior == "learned" else None
        self.posterior = GaussianHead(f, cfg.z_dim, m, prev_dim=cfg.d_dim)   # on [phi_x(x_t), h_{t-1}]
        self.emission = Emission(cfg, in_dim=cfg.d_dim + m)             # on [h_{t-1}, phi_z(z_t)]
        self.reset_parameters()
        lasagne_grus(self, cfg)
        self.step = compiled(self.chain_step, cfg)

    def reset_parameters(self):
        """As SRNN's like layers: Glorot-normal for the emission MLP, Glorot-uniform for the
        other dense layers, orthogonal GRU gates, zero biases (see ``srnn.models.model.initialize``)."""
        initialize(self, normal=(self.emission.mlp,))

    def initial_state(self, batch_size: int, samples: int = 1) -> VRNNState:
        w = self.posterior.mu.weight
        return VRNNState(w.new_zeros(samples * batch_size, self.cfg.d_dim),
                         w.new_zeros(samples * batch_size, self.cfg.z_dim))

    def prior_params(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of p(z_t | h_{t-1}); zeros for VRNN-I's N(0, I)."""
        if self.prior is None:
            zero = h.new_zeros(*h.shape[:-1], self.cfg.z_dim)
            return zero, zero
        return self.prior(h)

    def forward(self, x, u, mask=None, state: VRNNState | None = None, samples: int = 1,
                noise: torch.Tensor | None = None) -> Output:
        """One pass over a window, with SRNN.forward's arguments and Output. Step t first
        takes the recurrence step on x_{t-1} = u_t and z_{t-1}, giving h_{t-1}, then samples
        z_t ~ q(z_t | x_t, h_{t-1}) with the noise eps_t."""
        B, T = check_inputs(self, x, u, mask, state, samples, noise, self.cfg.z_dim)
        mask = x.new_ones(B, T) if mask is None else mask.to(x.dtype)
        K = samples
        state = self.initial_state(B, K) if state is None else state

        # Over the whole window at once: phi_x of u_t and x_t, the GRU's input side from
        # phi_x(u_t) and the posterior's hidden part from phi_x(x_t); then one (K*B, .) per step.
        phi_u, phi_x = self.phi(torch.cat([u, x])).split(B)
        f, w_ih = phi_u.shape[-1], self.gru_h.weight_ih_l0
        per_step = lambda a: a.transpose(0, 1).repeat(1, K, 1).unbind(0)
        pre_h = per_step(F.linear(phi_u, w_ih[:, :f], self.gru_h.bias_ih_l0))
        pre_q = per_step(self.posterior.c_part(phi_x))
        w_z, w_q = w_ih[:, f:], self.posterior.z_weight()
        w_hh, b_hh = self.gru_h.weight_hh_l0, self.gru_h.bias_hh_l0
        eps = torch.randn(T, K * B, self.cfg.z_dim, dtype=x.dtype, device=x.device) if noise is None else noise
        keep_h = self.dropout_mask((T, K * B, self.cfg.d_dim), self.cfg.drop_d, x)     # (T, K*B, .) or None
        keep_z = self.dropout_mask((T, K * B, self.cfg.z_dim), self.cfg.drop_z, x)

        # The loop: z_t feeds h_t, so h and z advance together.
        h, z = state.h, state.z
        phi_z, steps = self.phi_z(z), []
        for t in range(T):
            keep_t = None if keep_h is None else keep_h[t]
            h, z, phi_z, mu, logvar = self.step(pre_h[t], pre_q[t], h, phi_z, w_z, w_q, w_hh, b_hh, eps[t], keep_t)
            steps.append((h, z, phi_z, mu, logvar))
        h_seq, z_seq, phi_z_seq, mu_q, logvar_q = (torch.stack(s, 1) for s in zip(*steps))   # (K*B, T, .)

        # After the loop, in one batch: the prior, the emission, the KL and the likelihood.
        h_out = h_seq if keep_h is None else h_seq * keep_h.transpose(0, 1)
        phi_z_out = phi_z_seq if keep_z is None else self.phi_z(z_seq * keep_z.transpose(0, 1))
        mu_p, logvar_p = self.prior_params(h_out)
        ll = self.emission.log_prob(self.emission(h_out, phi_z_out), x.repeat(K, 1, 1))
        return latent_output(ll, z_seq, mu_q, logvar_q, mu_p, logvar_p, mask.repeat(K, 1), VRNNState(h, z))

    def dropout_mask(self, shape: tuple, p: float, like: torch.Tensor) -> torch.Tensor | None:
        """Inverted dropout's mask (0 or 1 / (1 - p)) while training with p > 0; else None,
        drawing no random numbers, so that runs without dropout keep their numbers."""
        if not (self.training and p > 0):
            return None
        return F.dropout(like.new_ones(shape), p, True)

    def chain_step(self, pre_h_t, pre_q_t, h, phi_z, w_z, w_q, w_hh, b_hh, eps_t, keep_t=None):
        """One step of the loop from h_{t-2} = ``h`` and phi_z(z_{t-1}): (h_{t-1}, z_t,
        phi_z(z_t), mu_q, logvar_q); the GRU's hidden side is ``w_hh``, ``b_hh``; ``keep_t``:
        the dropout mask on h_{t-1} where it feeds the posterior (None: no dropout)."""
        h = gru_step(torch.addmm(pre_h_t, phi_z, w_z.t()), h, w_hh, b_hh)
        h_q = h if keep_t is None else h * keep_t
        mu, logvar = self.posterior.from_hidden(act(torch.addmm(pre_q_t, h_q, w_q.t())))
        z = mu + std(logvar) * eps_t
        return h, z, self.phi_z(z), mu, logvar

    @torch.no_grad()
    def generate(self, steps: int, batch_size: int = 1, prefix_x: torch.Tensor | None = None,
                 mean_output: bool = False) -> torch.Tensor:
        """Sample x_{1:steps} from p, h stepping on the model's own x and z samples; as
        SRNN.generate (a prefix (B, T0, x_dim) is continued)."""
        state, x = generation_start(self, batch_size, prefix_x)
        h, z, out = state.h, state.z, []
        for _ in range(steps):
            h = self.gru_h(torch.cat([self.phi(x), self.phi_z(z)], -1)[:, None], h[None].contiguous())[1][0]
            mu, logvar = self.prior_params(h)
            z = mu + std(logvar) * torch.randn_like(mu)
            x = self.emission.sample(self.emission(h, self.phi_z(z)), mean_only=mean_output)
            out.append(x)
        return torch.stack(out, 1)


class RNN(nn.Module):
    """h_t = GRU(h_{t-1}, phi(u_t)), p(x_t | x_{<t}) = p(x_t | h_t): SRNN's deterministic
    path and emission, without z. d_dim GRU units, mlp_dim units per dense layer."""

    state_type = RNNState

    def __init__(self, cfg: Config):
        super().__init__()
        check_model(cfg, "rnn")
        self.cfg, self.noise_dim = cfg, 0                               # no latent, no noise
        self.phi = MLP(cfg.x_dim, cfg.mlp_dim, cfg.phi_layers)
        self.gru_h = nn.GRU(self.phi.out_dim, cfg.d_dim, batch_first=True)
        self.emission = Emission(cfg, in_dim=cfg.d_dim)                  # on h_t
        self.reset_parameters()
        lasagne_grus(self, cfg)

    def reset_parameters(self):
        """As SRNN's like layers (see ``VRNN.reset_parameters``)."""
        initialize(self, normal=(self.emission.mlp,))

    def initial_state(self, batch_size: int, samples: int = 1) -> RNNState:
        return RNNState(self.emission.out.weight.new_zeros(batch_size, self.cfg.d_dim))

    def forward(self, x, u, mask=None, state: RNNState | None = None, samples: int = 1,
                noise: torch.Tensor | None = None) -> Output:
        """SRNN.forward's arguments and Output; nothing is sampled, so every sample's rows
        hold the same exact terms: ll = log_w = log p(x_t | x_{<t}), kl = 0, and no z
        (kl_dim and z have 0 latent units; noise, if given, is (T, K*B, 0))."""
        B, T = check_inputs(self, x, u, mask, state, samples, noise, 0)
        mask = x.new_ones(B, T) if mask is None else mask.to(x.dtype)
        state = self.initial_state(B) if state is None else state
        h, h_last = self.gru_h(self.phi(u), state.h[None].contiguous())
        ll = (self.emission.log_prob(self.emission(h), x) * mask).repeat(samples, 1)
        none = ll.new_zeros(*ll.shape, 0)
        return Output(ll=ll, kl=torch.zeros_like(ll), log_w=ll, kl_dim=none, z=none, state=RNNState(h_last[0]))

    @torch.no_grad()
    def generate(self, steps: int, batch_size: int = 1, prefix_x: torch.Tensor | None = None,
                 mean_output: bool = False) -> torch.Tensor:
        """Sample x_{1:steps} from p, h stepping on the model's own samples; as SRNN.generate."""
        state, x = generation_start(self, batch_size, prefix_x)
        h, out = state.h, []
        for _ in range(steps):
            h = self.gru_h(self.phi(x)[:, None], h[None].contiguous())[1][0]
            x = self.emission.sample(self.emission(h), mean_only=mean_output)
            out.append(x)
        return torch.stack(out, 1)


CLASSES = {"srnn": SRNN, "vrnn": VRNN, "rnn": RNN}


def build_model(cfg: Config) -> nn.Module:
    """The model that ``cfg.model`` names, freshly initialized. Sizes whose weights the machine
    cannot hold raise a ConfigError that names them and the number of weights."""
    try:
        return CLASSES[cfg.model](cfg)
    except (RuntimeError, MemoryError) as err:      # torch.OutOfMemoryError is a RuntimeError
        if not isinstance(err, MemoryError) and "allocate" not in str(err):
            raise
        with torch.device("meta"):                  # counted from the shapes alone
            count = sum(p.numel() for p in CLASSES[cfg.model](cfg).parameters())
        raise ConfigError(f"the model of d_dim={cfg.d_dim}, z_dim={cfg.z_dim}, mlp_dim={cfg.mlp_dim} has "
                          f"{count:,} weights ({4 * count / 2**30:,.1f} GiB), more than this machine can hold: "
                          f"choose smaller sizes (the paper's largest, blizzard, has d_dim=2048)") from None
