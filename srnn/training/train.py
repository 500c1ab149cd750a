"""Training: Adam, learning-rate decay, clipping, KL annealing, validation, checkpoints.

The settings are the paper's (supplementary section 1, FACTS.md section 2; the schedules are
in :mod:`srnn.training.schedule`). A run lives in one folder: ``config.json``,
``history.jsonl`` (one line per epoch, rewritten as the run goes), ``last.pt`` (to resume)
and ``best.pt`` (best validation ELBO). Calling :func:`train` again on the same folder
resumes from ``last.pt`` and continues with the same numbers as a run that was never
interrupted: the checkpoint carries every random state and the rows' carried state.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm  # text bars (tqdm.auto would want ipywidgets in a notebook)

from ..config import Config
from ..datasets.batching import Batch
from ..files import write_atomic
from ..models.baselines import build_model
from ..models.objective import training_loss
from .checkpoint import check_identity, load_checkpoint, save_checkpoint
from .devices import DeviceError, check_compiler, resolve_device
from .distributed import DistributedError, check_batch_size, current_world, device_of
from .evaluate import evaluate
from .precision import tf32
from .schedule import adam_eps_share, beta_at, keep_training, lr_at, set_adam_eps
from .tally import FiniteGuard, Tally


def train(cfg: Config, train_data, valid: Sequence[Batch], run_dir: str | Path, *, data: dict | None = None,
          checkpoint_every: int = 500, progress: bool = True,
          on_start: Callable[[int], None] | None = None) -> list[dict]:
    """Train (or resume) the run in ``run_dir``; return its history, one record per epoch.

    ``train_data`` has ``len()`` (updates per epoch) and ``batches(epoch, start)``;
    ``valid`` is a list of batches for :func:`~srnn.training.evaluate.evaluate`; ``data`` is the
    data set's fingerprint, which the checkpoints carry: a folder holding a run of another
    config (beyond how long it trains, and where) or other data is refused. ``last.pt`` is
    also written every ``checkpoint_every`` updates inside an epoch. ``on_start`` is called,
    once the run is made or restored, with the number of epochs its checkpoint holds.
    """
    run = Run(cfg, Path(run_dir), data)
    if on_start is not None:
        on_start(len(run.history))
    updates = len(train_data)
    epoch = run.pos["epoch"]
    while keep_training(cfg, run.history):
        sums, t_epoch = run.train_epoch(epoch, train_data, updates, checkpoint_every, progress)
        run.end_epoch(epoch, sums, t_epoch, valid, updates)
        epoch += 1
    return run.history


class Run:
    """One run as it trains: the model and its optimizer, where the run stands (``pos``: epoch,
    batch, update and the epoch's sums so far), its history, the best validation bound, the
    rows' carried state and the time spent in earlier starts. Made fresh, or restored from
    ``last.pt``; :meth:`checkpoint` writes all of it back."""

    def __init__(self, cfg: Config, run_dir: Path, data: dict | None):
        self.cfg, self.run_dir, self.data = cfg, run_dir, data
        self.world = world = current_world()
        check_batch_size(world, cfg.batch_size)
        if world.main:
            run_dir.mkdir(parents=True, exist_ok=True)
        self.device = device = device_of(world, resolve_device(cfg.device))
        if cfg.precision == "tf32" and device.type != "cuda":
            raise DeviceError(f"precision=tf32 is a GPU's setting, and this run trains on {device}: use fp32 or bf16")
        check_compiler(cfg, device)
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg).to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
        self.pos = {"epoch": 0, "batch": 0, "step": 0, "sums": _zero_sums()}
        self.history, self.best, self.state, self.elapsed = [], -math.inf, None, 0.0
        self.net, self.noise = self.model, None
        if world.active:    # see srnn.training.distributed: one noise generator in step on every rank, dropout per rank
            self.net = DistributedDataParallel(self.model)     # the inputs are on its device already
            self.noise = torch.Generator(device).manual_seed(cfg.seed)
            torch.manual_seed(cfg.seed + 1 + world.rank)
        self.last = run_dir / "last.pt"
        if self.last.exists():
            self.resume(load_checkpoint(self.last, fix="delete it and run the same command again: the run "
                                                        "then trains again from its first epoch"))
        if world.main:
            write_atomic(run_dir / "config.json", cfg.to_json())
        self.t0 = time.time()                                   # this start's clock: elapsed adds to it

    def resume(self, ck: dict) -> None:
        """Take up the run where ``ck`` (from ``last.pt``) left it, refusing another run's."""
        world, model, device, last = self.world, self.model, self.device, self.last
        check_identity(ck, self.cfg, self.data, last, "resume it")
        if ck.get("world_size", 1) != world.size or ("noise_rng" in ck) != world.active:
            raise DistributedError(f"{last} was written by a run of {ck.get('world_size', 1)} process(es)"
                                   f"{' under torchrun' if 'noise_rng' in ck else ''}: resume it the same way, "
                                   f"or start a new run with --name")
        model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.pos, self.history, self.best, self.elapsed = ck["position"], ck["history"], ck["best"], ck["elapsed"]
        self.state = None if ck["state"] is None else model.state_type(*(world.rows_of(t).to(device)
                                                                          for t in ck["state"]))
        torch.set_rng_state(ck["rank_rng"][world.rank] if world.active else ck["rng"])
        if device.type == "cuda" and ck.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(ck["rank_cuda_rng"][world.rank] if world.active else ck["cuda_rng"], device)
        if world.active:
            self.noise.set_state(ck["noise_rng"])

    def checkpoint(self, path: Path, extra: dict | None = None) -> None:
        """Every rank takes part (their random states and rows' states are gathered); rank 0 writes."""
        world, device, state = self.world, self.device, self.state
        rows = None if state is None else [torch.cat(world.gather(getattr(state, f.name).cpu()))
                                            for f in dataclasses.fields(state)]
        rngs = world.gather(torch.get_rng_state())
        cuda_rngs = world.gather(torch.cuda.get_rng_state(device) if device.type == "cuda" else None)
        if not world.main:
            return
        save_checkpoint(path, {
            "config": self.cfg.to_dict(), "data": self.data, "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(), "position": self.pos, "history": self.history, "best": self.best,
            "elapsed": self.elapsed + time.time() - self.t0, "state": rows, "rng": rngs[0], "cuda_rng": cuda_rngs[0],
            "world_size": world.size,
            **({"rank_rng": rngs, "rank_cuda_rng": cuda_rngs, "noise_rng": self.noise.get_state()}
               if world.active else {}),
            **(extra or {})})

    def train_epoch(self, epoch: int, train_data, updates: int, checkpoint_every: int,
                    progress: bool) -> tuple[dict, float]:
        """The ``updates`` updates of ``epoch`` from where the run stands; returns the epoch's sums and
        when it started."""
        cfg, world = self.cfg, self.world
        for group in self.opt.param_groups:
            group["lr"] = lr_at(cfg, epoch)
        bar = tqdm(total=updates, initial=self.pos["batch"], disable=not (progress and world.main), leave=False,
                   desc=f"epoch {epoch + 1}/{cfg.epochs}{'+' if cfg.patience else ''}")
        sums, t_epoch, shown = self.pos["sums"], time.time(), 0.0
        tally, guard = Tally(sums, world, self.device), FiniteGuard(self.device, epoch, self.pos)
        for i, whole in enumerate(train_data.batches(epoch, self.pos["batch"]), start=self.pos["batch"]):
            batch = (world.rows(whole) if world.active else whole).to(self.device)
            beta = beta_at(cfg, self.pos["step"], updates)
            out, grad_norm = self.update(whole, batch, beta, guard)
            tally.add(batch.mask.sum(), out.ll.sum(), out.kl.sum(), grad_norm)
            sums["updates"] += 1
            sums["norms"] = sums.get("norms", 0) + 1                  # (checkpoints before it lack it)
            self.pos = {"epoch": epoch, "batch": i + 1, "step": self.pos["step"] + 1, "sums": sums}
            bar.update(1)
            if progress and world.main and time.time() - shown > 1.0:
                shown = time.time()
                bar.set_postfix(elbo=f"{tally.local_elbo():.3f}", beta=f"{beta:.3f}")
            if checkpoint_every and self.pos["step"] % checkpoint_every == 0 and i + 1 < updates:
                guard.check(self.last, world)
                tally.read(sums)
                self.checkpoint(self.last)
        guard.check(self.last, world)
        tally.read(sums)
        bar.close()
        return sums, t_epoch

    def update(self, whole: Batch, batch: Batch, beta: float, guard: FiniteGuard):
        """One Adam update on ``batch`` (this rank's rows of ``whole``) at KL temperature ``beta``;
        returns the model's output and the gradient norm before clipping."""
        cfg, world, model, device, noise = self.cfg, self.world, self.model, self.device, self.noise
        eps = None
        if world.active:
            B, T = whole.x.shape[:2]
            eps = torch.randn(T, B, model.noise_dim, generator=noise, device=device)[:, world.row_slice(B)]
        with tf32(cfg.precision == "tf32"):
            with torch.autocast(device.type, torch.bfloat16, enabled=cfg.precision == "bf16"):
                out = self.net(batch.x, batch.u, batch.mask, None if batch.reset else self.state, noise=eps)
            # Under torchrun: this rank's rows over the whole batch's steps, times the number of
            # ranks, so that the gradients, averaged over the ranks, are the whole batch's.
            steps = whole.mask.sum() if world.active else None       # a CPU scalar: no copy to wait for
            loss = training_loss(out, batch.mask, beta, steps=steps)
            guard.add(loss)
            self.opt.zero_grad(set_to_none=True)
            (loss * world.size if world.active else loss).backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
        torch.nn.utils.clip_grad_value_(model.parameters(), cfg.clip_value)
        set_adam_eps(self.opt, cfg, self.pos["step"] + 1)
        self.opt.step()
        self.state = out.state.detach()
        return out, grad_norm

    def end_epoch(self, epoch: int, sums: dict, t_epoch: float, valid: Sequence[Batch], updates: int) -> None:
        """The epoch's record (validated where due), added to the history and written with the checkpoints."""
        cfg, world = self.cfg, self.world
        record = {"epoch": epoch + 1, "step": self.pos["step"], "device": str(self.device), "lr": lr_at(cfg, epoch),
                  "beta": beta_at(cfg, self.pos["step"] - 1, updates),
                  "train_elbo_per_step": (sums["ll"] - sums["kl"]) / sums["steps"],
                  "train_kl_per_step": sums["kl"] / sums["steps"],
                  "updates_per_s": sums["updates"] / max(time.time() - t_epoch, 1e-9),
                  "grad_norm": sums["grad_norm"] / sums["norms"],     # mean total norm before clipping
                  "adam_eps_share": adam_eps_share(self.opt)}
        if world.main and ((epoch + 1) % cfg.valid_every == 0 or epoch + 1 >= cfg.epochs):
            metrics = evaluate(self.model, valid)
            record.update({f"valid_{k}": v for k, v in metrics.items() if k != "per_sequence"})
            if metrics["elbo_per_step"] > self.best:
                self.best = metrics["elbo_per_step"]
                record["best"] = True
        record["wall_time_s"] = self.elapsed + time.time() - self.t0
        warning = implausible(self.history, record)
        if warning:
            record["warning"] = warning
            if world.main:
                tqdm.write(f"warning: {warning}")
        record, self.best = world.from_main((record, self.best))       # rank 0 validated: every rank decides alike
        self.history.append(record)
        self.pos = {"epoch": epoch + 1, "batch": 0, "step": self.pos["step"], "sums": _zero_sums()}
        self.state = None
        if record.get("best"):
            self.checkpoint(self.run_dir / "best.pt")
        self.checkpoint(self.last)
        if world.main:
            _write_history(self.run_dir / "history.jsonl", self.history)


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
