"""The objectives: the per-step ELBO with KL temperature, and the importance-weighted bound.

ELBO (FACTS.md section 1): sum_t [log p(x_t | z_t, d_t) - beta * KL(q(z_t | .) || p(z_t | .))]
with the analytic Gaussian KL at each step given the sampled z_{t-1}. Training divides by the
number of unmasked steps. The importance-weighted bound (Burda et al. 2016) with K samples,
log (1/K) sum_k exp(sum_t log_w), is tighter than the ELBO and equals it in expectation at K=1;
the paper reports only the ELBO.
"""
from __future__ import annotations

import math

import torch

from .model import Output


def training_loss(out: Output, mask: torch.Tensor, beta: float, steps: torch.Tensor | None = None) -> torch.Tensor:
    """Minus the beta-weighted ELBO per unmasked step (a scalar to minimize). ``steps``: the
    number of steps to divide by when the rows are a share of a larger batch (its steps)."""
    samples = out.ll.shape[0] // mask.shape[0]
    return -(out.ll - beta * out.kl).sum() / ((mask.sum() if steps is None else steps) * samples)


def elbo_terms(out: Output) -> dict[str, torch.Tensor]:
    """Per-row totals over the window: log-likelihood, KL and ELBO (beta = 1), each (K*B,)."""
    ll, kl = out.ll.sum(1), out.kl.sum(1)
    return {"ll": ll, "kl": kl, "elbo": ll - kl}


def importance_weighted(log_w_total: torch.Tensor) -> torch.Tensor:
    """log (1/K) sum_k exp(log_w_total[k]) for log_w_total of shape (K, B): one bound per sequence."""
    return torch.logsumexp(log_w_total, 0) - math.log(log_w_total.shape[0])
