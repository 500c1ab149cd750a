"""A plain step-by-step SRNN with the parameters of an :class:`~srnn.model.SRNN`.

Every network runs one time step at a time on concatenated inputs, the GRUs are written
out from their equations, and nothing is precomputed or fused. It is slow on purpose: the
tests prove that the fast ``SRNN.forward`` computes the same function (values and
gradients), and the benchmark measures what the fast path gains.
"""
from __future__ import annotations

import torch

from .model import SRNN, Output, State, act, floored_log_prob, gaussian_kl, std


def gru_cell(gru: torch.nn.GRU, x, h):
    """One step of PyTorch's GRU: r, z gates, candidate n, h' = (1 - z) n + z h."""
    gi = x @ gru.weight_ih_l0.t() + gru.bias_ih_l0
    gh = h @ gru.weight_hh_l0.t() + gru.bias_hh_l0
    i_r, i_z, i_n = gi.chunk(3, -1)
    h_r, h_z, h_n = gh.chunk(3, -1)
    r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


def reference_forward(model: SRNN, x, u, mask=None, state: State | None = None,
                      noise=None) -> Output:
    """The same outputs as ``model(x, u, mask, state, samples=1, noise)``, step by step."""
    cfg = model.cfg
    B, T, _ = x.shape
    mask = x.new_ones(B, T) if mask is None else mask
    state = model.initial_state(B) if state is None else state
    noise = torch.randn(T, B, cfg.z_dim, dtype=x.dtype) if noise is None else noise

    d, ds = state.d, []
    for t in range(T):                                   # d_t = GRU(d_{t-1}, phi(u_t))
        d = gru_cell(model.gru_d, model.phi(u[:, t]), d)
        ds.append(d)
    a_s = [None] * T
    a = x.new_zeros(B, cfg.d_dim)
    for t in reversed(range(T)):                         # a_t from [d_t, phi(x_t)] (and a_{t+1})
        inp = torch.cat([ds[t], model.phi(x[:, t])], -1)
        if cfg.inference == "smoothing":
            real = mask[:, t, None] > 0                  # start at each row's last real step
            a = torch.where(real, gru_cell(model.gru_a, inp, a), a)
        else:
            a = act(model.mlp_a(inp))
        a_s[t] = a

    z, lls, kls, kl_dims, log_ws, zs = state.z, [], [], [], [], []
    for t in range(T):
        mu_p, logvar_p = model.prior(ds[t], z)
        mu_q, logvar_q = model.posterior(a_s[t], z)
        if cfg.resq:
            mu_q = mu_p + mu_q
        z = mu_q + std(logvar_q) * noise[t]
        params = model.emission(ds[t], z)
        ll = model.emission.log_prob(params, x[:, t])
        kl_dim = gaussian_kl(mu_q, logvar_q, mu_p, logvar_p)
        log_w = ll + floored_log_prob(z, mu_p, logvar_p) - floored_log_prob(z, mu_q, logvar_q)
        m = mask[:, t]
        lls.append(ll * m), kls.append(kl_dim.sum(-1) * m), kl_dims.append(kl_dim * m[:, None])
        log_ws.append(log_w * m), zs.append(z)
    return Output(ll=torch.stack(lls, 1), kl=torch.stack(kls, 1), log_w=torch.stack(log_ws, 1),
                  kl_dim=torch.stack(kl_dims, 1), z=torch.stack(zs, 1), state=State(d, z))
