"""A second SRNN, written from the equations, to hold :mod:`srnn.models.model` to the paper.

It imports nothing from the package: it reads a model's settings (``Config.to_dict()``)
and weights (``state_dict()``) and computes, one time step at a time and one network at a
time, what Fraccaro et al. (2016, eqs. 3-9) and the original Theano/Lasagne code define
(FACTS.md section 1):

    d_t = GRU(d_{t-1}, phi(u_t))                           phi: dense layers, shared with x_t
    a_t = GRU(a_{t+1}, [d_t, phi(x_t)])  (smoothing)   or  MLP([d_t, phi(x_t)])  (filtering)
    p(z_t | z_{t-1}, d_t) = N(mu_p, var_p),  q(z_t | z_{t-1}, a_t) = N(mu_q, var_q)
    mu_q = mu_p + delta  (Resq),  z_t = mu_q + sqrt(var_q) eps_t
    p(x_t | z_t, d_t): Bernoulli (music) or factorized Gaussian (speech)

with every nonlinearity the leaky ReLU of slope 1/3 clipped to [-3, 3], every latent
variance exp(log var) + 1e-6, the Bernoulli log-likelihood with eps 1e-7 and the Gaussian
output without a floor. Nothing is precomputed, fused or batched over time: it is slow
and plain on purpose, so that the tests can check the fast model against it on values and
gradients, and the benchmark can measure what the fast path gains.

The only things it shares with the model are the names of the weights in the state dict
and their layout: ``nn.Linear`` weights are (out, in); ``nn.GRU`` stacks the reset,
update and candidate gates in that order; a head's ``hidden`` rows hold the mean's hidden
layer and then the log-variance's; a Gaussian emission's ``out`` rows hold the mean and
then the log-variance.
"""
from __future__ import annotations

import math

import torch

SLOPE, CLIP = 1.0 / 3.0, 3.0       # leaky ReLU slope and clip (supplementary; original code)
LATENT_VAR_FLOOR = 1e-6           # original: cons = 10 ** -6 added to exp(log var)
BERNOULLI_TOLERANCE = 1e-7        # original: tolerance_softmax


def nonlinearity(h):
    return torch.where(h > 0, h, SLOPE * h).clamp(min=-CLIP, max=CLIP)


def dense(w: dict, name: str, h, rows: slice = slice(None)):
    """One affine layer h W^T + b, optionally only the output units ``rows`` of it."""
    return h @ w[name + ".weight"][rows].T + w[name + ".bias"][rows]


def mlp(w: dict, name: str, h):
    """Dense layers ``name.layers.0``, ``name.layers.1``, ..., each followed by the nonlinearity."""
    i = 0
    while f"{name}.layers.{i}.weight" in w:
        h = nonlinearity(dense(w, f"{name}.layers.{i}", h))
        i += 1
    return h


def gru_step(w: dict, name: str, x, h):
    """torch's GRU cell: r and s gates, candidate n = tanh(W_n x + b_n + r (U_n h + c_n)),
    new state (1 - s) n + s h."""
    wi, bi = w[name + ".weight_ih_l0"], w[name + ".bias_ih_l0"]
    wh, bh = w[name + ".weight_hh_l0"], w[name + ".bias_hh_l0"]
    n = h.shape[-1]
    r = torch.sigmoid(x @ wi[:n].T + bi[:n] + h @ wh[:n].T + bh[:n])
    s = torch.sigmoid(x @ wi[n:2 * n].T + bi[n:2 * n] + h @ wh[n:2 * n].T + bh[n:2 * n])
    cand = torch.tanh(x @ wi[2 * n:].T + bi[2 * n:] + r * (h @ wh[2 * n:].T + bh[2 * n:]))
    return (1 - s) * cand + s * h


def gaussian_head(w: dict, name: str, c, z_prev):
    """Mean and log variance of a latent Gaussian: two one-hidden-layer MLPs on [c, z_prev]."""
    inp = torch.cat([c, z_prev], -1)
    units = w[name + ".mu.weight"].shape[1]
    mean = dense(w, name + ".mu", nonlinearity(dense(w, name + ".hidden", inp, slice(0, units))))
    logvar = dense(w, name + ".logvar", nonlinearity(dense(w, name + ".hidden", inp, slice(units, 2 * units))))
    return mean, logvar


def log_normal(x, mean, var):
    """log N(x; mean, var), per dimension."""
    return -0.5 * math.log(2 * math.pi) - 0.5 * torch.log(var) - (x - mean) ** 2 / (2 * var)


def kl_normal(mean_q, var_q, mean_p, var_p):
    """KL(N(mean_q, var_q) || N(mean_p, var_p)), per dimension."""
    return 0.5 * (torch.log(var_p / var_q) + (var_q + (mean_q - mean_p) ** 2) / var_p - 1.0)


def log_likelihood(w: dict, settings: dict, d, z, x):
    """log p(x_t | z_t, d_t), summed over the frame."""
    out = dense(w, "emission.out", mlp(w, "emission.mlp", torch.cat([d, z], -1)))
    if settings["output"] == "bernoulli":
        p = torch.sigmoid(out)
        return (x * torch.log(p + BERNOULLI_TOLERANCE) + (1 - x) * torch.log(1 - p + BERNOULLI_TOLERANCE)).sum(-1)
    mean, logvar = out[..., :x.shape[-1]], out[..., x.shape[-1]:]
    return log_normal(x, mean, torch.exp(logvar)).sum(-1)


def record_step(out: dict, ll, z, q: tuple, p: tuple, m) -> None:
    """Append one step's masked terms to ``out``: the log-likelihood, the KL of q = (mean,
    var) from p (summed and per dimension), the importance log-weight and the sample z."""
    kl_dim = kl_normal(*q, *p)
    log_w = ll + log_normal(z, *p).sum(-1) - log_normal(z, *q).sum(-1)
    out["ll"].append(ll * m)
    out["kl"].append(kl_dim.sum(-1) * m)
    out["log_w"].append(log_w * m)
    out["kl_dim"].append(kl_dim * m[:, None])
    out["z"].append(z)


def reference_forward(settings: dict, weights: dict, x, u, mask=None, d0=None, z0=None, noise=None) -> dict:
    """Per-step terms of the ELBO for x, u (B, T, x_dim), one sample path.

    Returns ``ll``, ``kl``, ``log_w`` (B, T; zero at masked steps), ``kl_dim``, ``z``
    (B, T, z_dim) and the state ``d``, ``z_last`` that the next window starts from. ``d0``,
    ``z0``: the carried state (zeros if None); ``noise`` (T, B, z_dim): the standard normal
    draws of the z-chain (fresh if None).
    """
    w = weights
    B, T, _ = x.shape
    d_dim = w["gru_d.weight_hh_l0"].shape[1]
    z_dim = w["prior.mu.weight"].shape[0]
    mask = x.new_ones(B, T) if mask is None else mask
    d = x.new_zeros(B, d_dim) if d0 is None else d0
    z = x.new_zeros(B, z_dim) if z0 is None else z0
    noise = torch.randn(T, B, z_dim, dtype=x.dtype, device=x.device) if noise is None else noise

    ds = []
    for t in range(T):
        d = gru_step(w, "gru_d", mlp(w, "phi", u[:, t]), d)
        ds.append(d)
    a_s = [None] * T
    a = x.new_zeros(B, d_dim)
    for t in reversed(range(T)):
        inp = torch.cat([ds[t], mlp(w, "phi", x[:, t])], -1)
        if settings["inference"] == "smoothing":     # from each row's last real step back, a_{T+1} = 0
            a = torch.where(mask[:, t, None] > 0, gru_step(w, "gru_a", inp, a), a)
        else:
            a = mlp(w, "mlp_a", inp)
        a_s[t] = a

    out = {key: [] for key in ("ll", "kl", "log_w", "kl_dim", "z")}
    for t in range(T):
        mean_p, logvar_p = gaussian_head(w, "prior", ds[t], z)
        mean_q, logvar_q = gaussian_head(w, "posterior", a_s[t], z)
        if settings["resq"]:
            mean_q = mean_p + mean_q
        var_p, var_q = torch.exp(logvar_p) + LATENT_VAR_FLOOR, torch.exp(logvar_q) + LATENT_VAR_FLOOR
        z = mean_q + torch.sqrt(var_q) * noise[t]
        ll = log_likelihood(w, settings, ds[t], z, x[:, t])
        record_step(out, ll, z, (mean_q, var_q), (mean_p, var_p), mask[:, t])
    result = {key: torch.stack(values, 1) for key, values in out.items()}
    result.update(d=d, z_last=z)
    return result
