"""What an epoch of training keeps on the device between host synchronizations: the sums of
its bound and gradient norms (:class:`Tally`) and the watch for a non-finite loss
(:class:`FiniteGuard`). Both are read only at checkpoints and at the end of an epoch, so that
an update never waits for the GPU."""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import UserError
from .distributed import World


class NonFiniteLossError(UserError, RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


class Tally:
    """An epoch's sums of steps, log-likelihood, KL and gradient norms, kept on the device
    (no host synchronization per update) and read into ``sums`` at checkpoints and at the
    end of the epoch. Under torchrun rank 0 carries the sums so far and the other ranks
    count from zero; reading adds the ranks' counts (the gradient norm, computed after the
    gradients are shared, is every rank's alike)."""

    def __init__(self, sums: dict, world: World, device: torch.device):
        self.world = world
        carried = [sums["steps"], sums["ll"], sums["kl"]] if world.main else [0.0] * 3
        self.totals = torch.tensor(carried + [sums.get("grad_norm", 0.0)], dtype=torch.float64, device=device)

    def add(self, *values: torch.Tensor) -> None:
        self.totals += torch.stack([v.double() for v in values])

    def local_elbo(self) -> float:
        """This rank's training bound per step so far (one synchronization), for the progress bar."""
        steps, ll, kl, _ = self.totals.tolist()
        return (ll - kl) / steps

    def read(self, sums: dict) -> None:
        steps_ll_kl = self.world.total(self.totals[:3])
        sums.update(zip(("steps", "ll", "kl", "grad_norm"), steps_ll_kl.tolist() + [self.totals[3].item()]))
        self.totals[:3] = steps_ll_kl if self.world.main else 0.0


class FiniteGuard:
    """Watches the training loss on the device, without a host synchronization per update;
    :meth:`check` (one synchronization) raises on the first non-finite loss since the last
    check, naming its update."""

    def __init__(self, device: torch.device, epoch: int, pos: dict):
        self.epoch, self.batch, self.step = epoch, pos["batch"], pos["step"]
        self.ok = torch.ones((), dtype=torch.bool, device=device)          # every loss finite so far
        self.good = torch.zeros((), dtype=torch.long, device=device)       # updates before the first bad one
        self.first = torch.zeros((), device=device)                        # the first bad loss

    def add(self, loss: torch.Tensor) -> None:
        bad = self.ok & ~torch.isfinite(loss.detach())
        self.first = torch.where(bad, loss.detach(), self.first)
        self.ok = self.ok & ~bad
        self.good += self.ok

    def check(self, last: Path, world: World) -> None:
        """Every rank stops if one saw a non-finite loss (their gradients are shared)."""
        ok, first = self.ok.item(), self.first.item()
        good = int(world.least(self.good))
        if not world.least(self.ok):
            value = first if not ok else "non-finite on another rank"
            raise NonFiniteLossError(
                f"the training loss became {value} at epoch {self.epoch + 1}, update {self.batch + good + 1} "
                f"(step {self.step + good + 1}); the run stopped and its last good checkpoint is kept at "
                f"{last if last.exists() else '(none written yet)'}. Check the data for nan/inf, or "
                f"start a new run with a lower learning rate or clipping (e.g. --name lr3e-4 --set "
                f"lr=3e-4); a run cannot change them when it resumes")
        self.batch, self.step, self.good = self.batch + good, self.step + good, self.good.zero_()
