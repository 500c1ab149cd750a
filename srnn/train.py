"""Training: Adam, learning-rate decay, clipping, KL annealing, validation, checkpoints.

The settings are the paper's (supplementary section 1, FACTS.md section 2). A run lives in
one folder: ``config.json``, ``history.jsonl`` (one line per epoch, rewritten as the run
goes), ``last.pt`` (to resume) and ``best.pt`` (best validation ELBO). Calling
:func:`train` again on the same folder resumes from ``last.pt`` and continues with the same
numbers as a run that was never interrupted.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm  # text bars (tqdm.auto would want ipywidgets in a notebook)

from .baselines import build_model
from .batching import Batch
from .checkpoint import check_identity, load_checkpoint, save_checkpoint
from .config import Config
from .distributed import DistributedError, World, check_batch, current_world, device_of
from .errors import UserError
from .evaluate import evaluate
from .files import write_atomic
from .objective import training_loss
from .precision import tf32


class NonFiniteLossError(UserError, RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


class DeviceError(UserError, ValueError):
    """The config names a device this machine does not have."""


def resolve_device(name: str) -> torch.device:
    """'auto' picks the GPU when there is one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"device {name!r} is not a torch device name; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise DeviceError(f"device {name!r} is not available on this machine ({torch.cuda.device_count()} CUDA "
                          f"device(s)); set device=auto or device=cpu")
    if device.type not in ("cpu", "cuda"):
        raise DeviceError(f"device {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    return device


def check_compiler(cfg: Config, device: torch.device) -> None:
    """``compile=true`` needs what torch.compile builds its kernels with: Triton on a GPU, a
    C++ compiler on a CPU."""
    if not cfg.compile:
        return
    needs = "Triton (pip install triton)" if device.type == "cuda" else "a C++ compiler (g++ or clang++, or $CXX)"
    found = importlib.util.find_spec("triton") if device.type == "cuda" else \
        next(filter(None, map(shutil.which, (os.environ.get("CXX", ""), "g++", "clang++", "c++"))), None)
    if not found:
        raise DeviceError(f"compile=true needs {needs} on this machine to build its kernels for {device.type}, "
                          f"and there is none: install it, or set compile=false")


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


def train(cfg: Config, train_data, valid: Sequence[Batch], run_dir: str | Path, *, data: dict | None = None,
          checkpoint_every: int = 500, progress: bool = True) -> list[dict]:
    """Train (or resume) the run in ``run_dir``; return its history, one record per epoch.

    ``train_data`` has ``len()`` (updates per epoch) and ``batches(epoch, start)``;
    ``valid`` is a list of batches for :func:`~srnn.evaluate.evaluate`; ``data`` is the
    data set's fingerprint, which the checkpoints carry: a folder holding a run of another
    config (beyond how long it trains, and where) or other data is refused. ``last.pt`` is
    also written every ``checkpoint_every`` updates inside an epoch.
    """
    run_dir = Path(run_dir)
    world = current_world()
    check_batch(world, cfg.batch_size)
    if world.main:
        run_dir.mkdir(parents=True, exist_ok=True)
    device = device_of(world, resolve_device(cfg.device))
    if cfg.precision == "tf32" and device.type != "cuda":
        raise DeviceError(f"precision=tf32 is a GPU's setting, and this run trains on {device}: use fp32 or bf16")
    check_compiler(cfg, device)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
    pos = {"epoch": 0, "batch": 0, "step": 0, "sums": _zero_sums()}
    history, best, state, elapsed = [], -math.inf, None, 0.0
    net, noise = model, None
    if world.active:    # see srnn.distributed: one noise generator in step on every rank, dropout per rank
        net = DistributedDataParallel(model)     # the inputs are on its device already
        noise = torch.Generator(device).manual_seed(cfg.seed)
        torch.manual_seed(cfg.seed + 1 + world.rank)

    last = run_dir / "last.pt"
    if last.exists():
        ck = load_checkpoint(last)
        check_identity(ck, cfg, data, last, "resume it")
        if ck.get("world_size", 1) != world.size or ("noise_rng" in ck) != world.active:
            raise DistributedError(f"{last} was written by a run of {ck.get('world_size', 1)} process(es)"
                                   f"{' under torchrun' if 'noise_rng' in ck else ''}: resume it the same way, "
                                   f"or start a new run with --name")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        pos, history, best, elapsed = ck["position"], ck["history"], ck["best"], ck["elapsed"]
        state = None if ck["state"] is None else model.state_type(*(world.rows_of(t).to(device) for t in ck["state"]))
        torch.set_rng_state(ck["rank_rng"][world.rank] if world.active else ck["rng"])
        if device.type == "cuda" and ck.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(ck["rank_cuda_rng"][world.rank] if world.active else ck["cuda_rng"], device)
        if world.active:
            noise.set_state(ck["noise_rng"])
    if world.main:
        write_atomic(run_dir / "config.json", cfg.to_json())

    def checkpoint(path: Path, extra: dict | None = None):
        """Every rank takes part (their random states and rows' states are gathered); rank 0 writes."""
        rows = None if state is None else [torch.cat(world.gather(getattr(state, f.name).cpu()))
                                            for f in dataclasses.fields(state)]
        rngs = world.gather(torch.get_rng_state())
        cuda_rngs = world.gather(torch.cuda.get_rng_state(device) if device.type == "cuda" else None)
        if not world.main:
            return
        save_checkpoint(path, {
            "config": cfg.to_dict(), "data": data, "model": model.state_dict(), "optimizer": opt.state_dict(),
            "position": pos, "history": history, "best": best, "elapsed": elapsed + time.time() - t0,
            "state": rows, "rng": rngs[0], "cuda_rng": cuda_rngs[0], "world_size": world.size,
            **({"rank_rng": rngs, "rank_cuda_rng": cuda_rngs, "noise_rng": noise.get_state()} if world.active else {}),
            **(extra or {})})

    updates = len(train_data)
    t0 = time.time()
    epoch = pos["epoch"]
    while keep_training(cfg, history):
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, epoch)
        bar = tqdm(total=updates, initial=pos["batch"], disable=not (progress and world.main), leave=False,
                   desc=f"epoch {epoch + 1}/{cfg.epochs}{'+' if cfg.patience else ''}")
        sums, t_epoch, shown = pos["sums"], time.time(), 0.0
        tally, guard = Tally(sums, world, device), FiniteGuard(device, epoch, pos)
        for i, whole in enumerate(train_data.batches(epoch, pos["batch"]), start=pos["batch"]):
            batch = (world.rows(whole) if world.active else whole).to(device)
            beta = beta_at(cfg, pos["step"], updates)
            eps = None
            if world.active:
                B, T = whole.x.shape[:2]
                eps = torch.randn(T, B, model.noise_dim, generator=noise, device=device)[:, world.row_slice(B)]
            with tf32(cfg.precision == "tf32"):
                with torch.autocast(device.type, torch.bfloat16, enabled=cfg.precision == "bf16"):
                    out = net(batch.x, batch.u, batch.mask, None if batch.reset else state, noise=eps)
                # Under torchrun: this rank's rows over the whole batch's steps, times the number of
                # ranks, so that the gradients, averaged over the ranks, are the whole batch's.
                steps = whole.mask.sum() if world.active else None       # a CPU scalar: no copy to wait for
                loss = training_loss(out, batch.mask, beta, steps=steps)
                guard.add(loss)
                opt.zero_grad(set_to_none=True)
                (loss * world.size if world.active else loss).backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
            torch.nn.utils.clip_grad_value_(model.parameters(), cfg.clip_value)
            set_adam_eps(opt, cfg, pos["step"] + 1)
            opt.step()
            state = out.state.detach()
            tally.add(batch.mask.sum(), out.ll.sum(), out.kl.sum(), grad_norm)
            sums["updates"] += 1
            sums["norms"] = sums.get("norms", 0) + 1                  # (checkpoints before it lack it)
            pos = {"epoch": epoch, "batch": i + 1, "step": pos["step"] + 1, "sums": sums}
            bar.update(1)
            if progress and world.main and time.time() - shown > 1.0:
                shown = time.time()
                bar.set_postfix(elbo=f"{tally.local_elbo():.3f}", beta=f"{beta:.3f}")
            if checkpoint_every and pos["step"] % checkpoint_every == 0 and i + 1 < updates:
                guard.check(last, world)
                tally.read(sums)
                checkpoint(last)
        guard.check(last, world)
        tally.read(sums)
        bar.close()
        record = {"epoch": epoch + 1, "step": pos["step"], "device": str(device), "lr": lr_at(cfg, epoch),
                  "beta": beta_at(cfg, pos["step"] - 1, updates),
                  "train_elbo_per_step": (sums["ll"] - sums["kl"]) / sums["steps"],
                  "train_kl_per_step": sums["kl"] / sums["steps"],
                  "updates_per_s": sums["updates"] / max(time.time() - t_epoch, 1e-9),
                  "grad_norm": sums["grad_norm"] / sums["norms"],     # mean total norm before clipping
                  "adam_eps_share": adam_eps_share(opt)}
        if world.main and ((epoch + 1) % cfg.valid_every == 0 or epoch + 1 >= cfg.epochs):
            metrics = evaluate(model, valid)
            record.update({f"valid_{k}": v for k, v in metrics.items() if k != "per_sequence"})
            if metrics["elbo_per_step"] > best:
                best = metrics["elbo_per_step"]
                record["best"] = True
        record["wall_time_s"] = elapsed + time.time() - t0
        warning = implausible(history, record)
        if warning:
            record["warning"] = warning
            if world.main:
                tqdm.write(f"warning: {warning}")
        record, best = world.from_main((record, best))       # rank 0 validated: every rank decides alike
        history.append(record)
        pos = {"epoch": epoch + 1, "batch": 0, "step": pos["step"], "sums": _zero_sums()}
        state = None
        if record.get("best"):
            checkpoint(run_dir / "best.pt")
        checkpoint(last)
        if world.main:
            _write_history(run_dir / "history.jsonl", history)
        epoch += 1
    return history


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


def _zero_sums() -> dict:
    return {"steps": 0.0, "ll": 0.0, "kl": 0.0, "updates": 0, "grad_norm": 0.0, "norms": 0}


def _write_history(path: Path, history: list[dict]) -> None:
    write_atomic(path, "".join(json.dumps(r) + "\n" for r in history))


def implausible(history: list[dict], record: dict) -> str | None:
    """A warning when an epoch's training bound per step lies far below the first epoch's
    (by more than the first epoch's own magnitude, and at least 1 nat): a rate that
    diverges while the loss stays finite ends there, and its numbers mean nothing."""
    if not history:
        return None
    first, now = history[0]["train_elbo_per_step"], record["train_elbo_per_step"]
    if now < first - max(1.0, abs(first)):
        return (f"epoch {record['epoch']}: training bound {now:.4g} per step, far below the first epoch's "
                f"{first:.4g}: training has diverged; start a new run with a lower learning rate")
    return None
