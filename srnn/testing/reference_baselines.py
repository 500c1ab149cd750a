"""A second VRNN and RNN, written from the equations, to hold :mod:`srnn.models.baselines` to them.

Like :mod:`srnn.testing.reference`, whose layer functions it uses (dense layers, the nonlinearity,
torch's GRU cell, the latent heads, the output likelihoods: all checked against SRNN by
tests/test_fidelity.py), it imports nothing from the fast path. It reads a model's settings
(``Config.to_dict()``) and weights (``state_dict()``) and computes one time step and one
network at a time, with nothing precomputed or batched over time:

VRNN (Chung et al. 2015, section 3), with the recurrence step that reads x_{t-1} taken at
step t from u_t = x_{t-1} (the choice srnn/models/baselines.py explains):

    h_{t-1} = GRU(h_{t-2}, [phi_x(u_t), phi_z(z_{t-1})])
    p(z_t | h_{t-1}) = N(mu_0, var_0)                (VRNN-I: N(0, I))
    q(z_t | x_t, h_{t-1}) = N(mu_z, var_z),   z_t = mu_z + sqrt(var_z) eps_t
    p(x_t | z_t, h_{t-1}): Bernoulli or factorized Gaussian, from [h_{t-1}, phi_z(z_t)]

RNN:  h_t = GRU(h_{t-1}, phi(u_t)),  p(x_t | x_{<t}) = p(x_t | h_t).

Every latent variance is exp(log var) + 1e-6, as SRNN's. What it shares with the models is
the layout of their weights: the names; a head's hidden rows (the mean's hidden layer, then
the log variance's); the posterior's input columns [phi_x(x_t), h_{t-1}]; the GRU's input
columns [phi_x, phi_z]; the emission's input columns [h, phi_z(z_t)].
"""
from __future__ import annotations

import torch

from .reference import LATENT_VAR_FLOOR, gaussian_head, gru_step, log_likelihood, mlp, record_step


def vrnn_forward(settings: dict, weights: dict, x, u, mask=None, h0=None, z0=None, noise=None,
                 keep_h=None, keep_z=None) -> dict:
    """Per-step terms of the VRNN's bound for x, u (B, T, x_dim), one sample path.

    Returns ``ll``, ``kl``, ``log_w`` (B, T; zero at masked steps), ``kl_dim``, ``z``
    (B, T, z_dim) and the state ``h`` (h_{T-1}) and ``z_last`` the next window starts from.
    ``h0``, ``z0``: the carried state (zeros if None); ``noise`` (T, B, z_dim): the standard
    normal draws (fresh if None). ``keep_h`` (T, B, h_dim) and ``keep_z`` (T, B, z_dim):
    dropout's scaled masks, by which h_{t-1} is multiplied where the prior, the posterior and
    the emission read it, and z_t where the emission reads it (None: no dropout).
    """
    w = weights
    B, T, _ = x.shape
    h_dim = w["gru_h.weight_hh_l0"].shape[1]
    z_dim = w["posterior.mu.weight"].shape[0]
    mask = x.new_ones(B, T) if mask is None else mask
    h = x.new_zeros(B, h_dim) if h0 is None else h0
    z = x.new_zeros(B, z_dim) if z0 is None else z0
    noise = torch.randn(T, B, z_dim, dtype=x.dtype, device=x.device) if noise is None else noise

    out = {key: [] for key in ("ll", "kl", "log_w", "kl_dim", "z")}
    for t in range(T):
        h = gru_step(w, "gru_h", torch.cat([mlp(w, "phi", u[:, t]), mlp(w, "phi_z", z)], -1), h)
        h_read = h if keep_h is None else h * keep_h[t]                     # what the heads read
        if settings["vrnn_prior"] == "standard":
            mean_p, var_p = torch.zeros_like(z), torch.ones_like(z) + LATENT_VAR_FLOOR
        else:
            mean_p, logvar_p = gaussian_head(w, "prior", h_read, h[:, :0])  # on h_{t-1} alone
            var_p = torch.exp(logvar_p) + LATENT_VAR_FLOOR
        mean_q, logvar_q = gaussian_head(w, "posterior", mlp(w, "phi", x[:, t]), h_read)
        var_q = torch.exp(logvar_q) + LATENT_VAR_FLOOR
        z = mean_q + torch.sqrt(var_q) * noise[t]
        z_read = z if keep_z is None else z * keep_z[t]
        ll = log_likelihood(w, settings, h_read, mlp(w, "phi_z", z_read), x[:, t])
        record_step(out, ll, z, (mean_q, var_q), (mean_p, var_p), mask[:, t])
    result = {key: torch.stack(values, 1) for key, values in out.items()}
    result.update(h=h, z_last=z)
    return result


def rnn_forward(settings: dict, weights: dict, x, u, mask=None, h0=None) -> dict:
    """log p(x_t | x_{<t}) per step (B, T; zero at masked steps) as ``ll``, and the state
    ``h`` (h_T) the next window starts from (``h0``: the carried one, zeros if None)."""
    w = weights
    B, T, _ = x.shape
    mask = x.new_ones(B, T) if mask is None else mask
    h = x.new_zeros(B, w["gru_h.weight_hh_l0"].shape[1]) if h0 is None else h0
    ll = []
    for t in range(T):
        h = gru_step(w, "gru_h", mlp(w, "phi", u[:, t]), h)
        ll.append(log_likelihood(w, settings, h, h[:, :0], x[:, t]) * mask[:, t])   # on h_t alone
    return {"ll": torch.stack(ll, 1), "h": h}
