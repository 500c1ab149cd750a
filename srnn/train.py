"""Training: Adam, learning-rate decay, clipping, KL annealing, validation, checkpoints.

The settings are the paper's (supplementary section 1, FACTS.md section 2). A run lives in
one folder: ``config.json``, ``history.jsonl`` (one line per epoch, rewritten as the run
goes), ``last.pt`` (to resume) and ``best.pt`` (best validation ELBO). Calling
:func:`train` again on the same folder resumes from ``last.pt`` and continues with the same
numbers as a run that was never interrupted.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .baselines import build_model
from .batching import Batch
from .checkpoint import check_identity, load_checkpoint, save_checkpoint
from .config import Config
from .errors import UserError
from .evaluate import evaluate
from .files import write_atomic
from .objective import training_loss


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
    run_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
    pos = {"epoch": 0, "batch": 0, "step": 0, "sums": _zero_sums()}
    history, best, state, elapsed = [], -math.inf, None, 0.0

    last = run_dir / "last.pt"
    if last.exists():
        ck = load_checkpoint(last)
        check_identity(ck, cfg, data, last, "resume it")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        pos, history, best, elapsed = ck["position"], ck["history"], ck["best"], ck["elapsed"]
        state = None if ck["state"] is None else model.state_type(*(t.to(device) for t in ck["state"]))
        torch.set_rng_state(ck["rng"])
        if device.type == "cuda" and ck.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(ck["cuda_rng"], device)
    write_atomic(run_dir / "config.json", cfg.to_json())

    def checkpoint(path: Path, extra: dict | None = None):
        save_checkpoint(path, {
            "config": cfg.to_dict(), "data": data, "model": model.state_dict(), "optimizer": opt.state_dict(),
            "position": pos, "history": history, "best": best, "elapsed": elapsed + time.time() - t0,
            "state": None if state is None else [getattr(state, f.name).cpu() for f in dataclasses.fields(state)],
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            **(extra or {})})

    updates = len(train_data)
    t0 = time.time()
    epoch = pos["epoch"]
    while keep_training(cfg, history):
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, epoch)
        bar = tqdm(total=updates, initial=pos["batch"], disable=not progress, leave=False,
                   desc=f"epoch {epoch + 1}/{cfg.epochs}{'+' if cfg.patience else ''}")
        sums, t_epoch = pos["sums"], time.time()
        for i, batch in enumerate(train_data.batches(epoch, pos["batch"]), start=pos["batch"]):
            batch = batch.to(device)
            beta = beta_at(cfg, pos["step"], updates)
            out = model(batch.x, batch.u, batch.mask, None if batch.reset else state)
            loss = training_loss(out, batch.mask, beta)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"the training loss became {loss.item()} at epoch {epoch + 1}, update {i + 1} "
                    f"(step {pos['step'] + 1}); the run stopped and its last good checkpoint is kept at "
                    f"{last if last.exists() else '(none written yet)'}. Check the data for nan/inf, or "
                    f"start a new run with a lower learning rate or clipping (e.g. --name lr3e-4 --set "
                    f"lr=3e-4); a run cannot change them when it resumes")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
            torch.nn.utils.clip_grad_value_(model.parameters(), cfg.clip_value)
            set_adam_eps(opt, cfg, pos["step"] + 1)
            opt.step()
            state = out.state.detach()
            n = batch.mask.sum().item()
            sums["steps"] += n
            sums["ll"] += out.ll.sum().item()
            sums["kl"] += out.kl.sum().item()
            sums["updates"] += 1
            sums["grad_norm"] = sums.get("grad_norm", 0.0) + grad_norm.item()   # (checkpoints before
            sums["norms"] = sums.get("norms", 0) + 1                              # these fields lack them)
            pos = {"epoch": epoch, "batch": i + 1, "step": pos["step"] + 1, "sums": sums}
            bar.update(1)
            bar.set_postfix(elbo=f"{(sums['ll'] - sums['kl']) / sums['steps']:.3f}", beta=f"{beta:.3f}")
            if checkpoint_every and pos["step"] % checkpoint_every == 0 and i + 1 < updates:
                checkpoint(last)
        bar.close()
        record = {"epoch": epoch + 1, "step": pos["step"], "device": str(device), "lr": lr_at(cfg, epoch),
                  "beta": beta_at(cfg, pos["step"] - 1, updates),
                  "train_elbo_per_step": (sums["ll"] - sums["kl"]) / sums["steps"],
                  "train_kl_per_step": sums["kl"] / sums["steps"],
                  "updates_per_s": sums["updates"] / max(time.time() - t_epoch, 1e-9),
                  "grad_norm": sums["grad_norm"] / sums["norms"],     # mean total norm before clipping
                  "adam_eps_share": adam_eps_share(opt)}
        if (epoch + 1) % cfg.valid_every == 0 or epoch + 1 >= cfg.epochs:
            metrics = evaluate(model, valid)
            record.update({f"valid_{k}": v for k, v in metrics.items() if k != "per_sequence"})
            if metrics["elbo_per_step"] > best:
                best = metrics["elbo_per_step"]
                record["best"] = True
        record["wall_time_s"] = elapsed + time.time() - t0
        warning = implausible(history, record)
        if warning:
            record["warning"] = warning
            tqdm.write(f"warning: {warning}")
        history.append(record)
        pos = {"epoch": epoch + 1, "batch": 0, "step": pos["step"], "sums": _zero_sums()}
        state = None
        if record.get("best"):
            checkpoint(run_dir / "best.pt")
        checkpoint(last)
        _write_history(run_dir / "history.jsonl", history)
        epoch += 1
    return history


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
