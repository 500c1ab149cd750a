"""The schedules of training (supplementary section 1, FACTS.md section 2): the KL temperature
per update, the learning rate per epoch, how many epochs run, and Adam's epsilon as the
original code's Lasagne applied it."""
from __future__ import annotations

import math

import torch

from ..config import Config


def beta_at(cfg: Config, step: int, updates_per_epoch: int) -> float:
    """KL temperature before update ``step`` (0-based): linear per update from kl_start by
    kl_increment, linear from kl_start to 1 over kl_epochs epochs, or constant kl_start."""
    if cfg.kl_schedule == "constant":
        return cfg.kl_start
    if cfg.kl_schedule == "linear_update":
        return min(1.0, cfg.kl_start + cfg.kl_increment * step)
    return min(1.0, cfg.kl_start + (1 - cfg.kl_start) * step / (cfg.kl_epochs * updates_per_epoch))


def lr_at(cfg: Config, epoch: int) -> float:
    """Learning rate in 0-based ``epoch``: full for lr_decay_start epochs, then divided by
    lr_decay once more every epoch."""
    return cfg.lr / cfg.lr_decay ** max(0, epoch + 1 - cfg.lr_decay_start)


def keep_training(cfg: Config, history: list[dict]) -> bool:
    """Whether another epoch follows the ``len(history)`` done: always within the first
    ``epochs``; after them only with ``patience``, while the best validation epoch is fewer
    than ``patience`` epochs old, and never past ``max_epochs``."""
    done = len(history)
    if done < cfg.epochs:
        return True
    if cfg.patience == 0 or done >= cfg.max_epochs:
        return False
    validated = [r for r in history if "valid_elbo_per_step" in r]
    return bool(validated) and done - max(validated, key=lambda r: r["valid_elbo_per_step"])["epoch"] < cfg.patience


def set_adam_eps(opt: torch.optim.Adam, cfg: Config, t: int) -> None:
    """Adam's epsilon for update ``t`` (1-based). torch adds it to sqrt(v_t / (1 - beta2^t));
    Lasagne's adam, which the original code used, adds it to sqrt(v_t) and folds the
    correction into the step size. The two agree when torch's epsilon is
    adam_eps / sqrt(1 - beta2^t): about 30 times adam_eps at the first update, within 1%
    of it after 5,000."""
    for group in opt.param_groups:
        correction = 1.0 if cfg.adam_eps_style == "torch" else math.sqrt(1 - group["betas"][1] ** t)
        group["eps"] = cfg.adam_eps / correction


@torch.no_grad()
def adam_eps_share(opt: torch.optim.Adam) -> float:
    """The share of weights whose Adam denominator is mostly epsilon: sqrt(v_t / (1 - beta2^t))
    below the epsilon of the last update. There Adam moves a weight by about lr * m_t / eps,
    in proportion to the (clipped) gradient, rather than by about lr whatever its size."""
    below = total = 0
    for group in opt.param_groups:
        for p in group["params"]:
            state = opt.state.get(p)
            if state and "exp_avg_sq" in state:
                v_hat = state["exp_avg_sq"] / (1 - group["betas"][1] ** float(state["step"]))
                below += (v_hat.sqrt() < group["eps"]).sum().item()
                total += v_hat.numel()
    return below / total if total else math.nan
