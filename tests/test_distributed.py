"""One run over several processes (torch.distributed with gloo, on the CPU): two processes
compute what one process computes on the whole batch, a killed two-process run resumes to
the same numbers, and what cannot work is refused with one clear message."""
import contextlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from srnn.config import preset
from srnn.datasets.batching import ChunkBatches, sequence_batches
from srnn.training.checkpoint import load_checkpoint
from srnn.training.distributed import DistributedError, World, check_batch_size
from srnn.training.train import train

ROOT = Path(__file__).resolve().parents[1]


def toy(n=16, T=30, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(T)[None, :, None] + rng.uniform(0, 6, (n, 1, 1))
    return (np.sin(0.5 * t + np.arange(dim) * 0.7) + 0.05 * rng.standard_normal((n, T, dim))).astype(np.float32)


class DiesAt:
    """Training data that stops the process (as a kill would) at one update of epoch 1."""

    def __init__(self, source, batch):
        self.source, self.batch = source, batch

    def __len__(self):
        return len(self.source)

    def batches(self, epoch, start=0):
        for i, b in enumerate(self.source.batches(epoch, start), start=start):
            if (epoch, i) == (1, self.batch):
                raise KeyboardInterrupt
            yield b


def _rank(rank, size, rendezvous, run_dir, overrides, dies_at):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=size)
    try:
        cfg = preset("tiny", window=10, batch_size=4, epochs=2, **overrides)
        data = ChunkBatches(toy(), batch_size=4, window=10, seed=cfg.seed)
        valid = list(sequence_batches(list(toy(n=4, seed=1)), batch_size=4))
        with contextlib.suppress(KeyboardInterrupt):
            train(cfg, DiesAt(data, dies_at) if dies_at is not None else data, valid, run_dir,
                  progress=False, checkpoint_every=5)
    finally:
        dist.destroy_process_group()


def launch(size, run_dir, dies_at=None, **overrides):
    """Train the toy run on ``size`` processes; return its last checkpoint."""
    rendezvous = run_dir.parent / f"rendezvous-{uuid.uuid4().hex}"
    mp.spawn(_rank, args=(size, str(rendezvous), str(run_dir), overrides, dies_at), nprocs=size)
    return load_checkpoint(run_dir / "last.pt")


def numbers(history):
    return [[r[k] for k in ("train_elbo_per_step", "train_kl_per_step", "grad_norm", "valid_elbo_per_step")]
            for r in history]


def test_two_processes_train_as_one_process_on_the_whole_batch(tmp_path):
    one = launch(1, tmp_path / "one")
    two = launch(2, tmp_path / "two")
    assert two["world_size"] == 2 and len(two["history"]) == 2
    for name, p in one["model"].items():
        torch.testing.assert_close(two["model"][name], p, rtol=1e-4, atol=1e-5, msg=name)
    np.testing.assert_allclose(numbers(two["history"]), numbers(one["history"]), rtol=1e-5)


def test_a_killed_two_process_run_resumes_to_the_same_numbers(tmp_path):
    whole = launch(2, tmp_path / "whole", drop_d=0.25)                     # dropout: each rank's own draws
    launch(2, tmp_path / "killed", dies_at=7, drop_d=0.25)                 # after the checkpoint at update 15
    killed = load_checkpoint(tmp_path / "killed" / "last.pt")
    assert killed["position"]["step"] == 15 and killed["state"][0].shape[0] == 4     # both ranks' rows
    resumed = launch(2, tmp_path / "killed", drop_d=0.25)
    for name, p in whole["model"].items():
        assert torch.equal(resumed["model"][name], p), name
    np.testing.assert_allclose(numbers(resumed["history"]), numbers(whole["history"]), rtol=1e-12)
    # One process cannot resume it: its noise and dropout streams are the two ranks'.
    cfg = preset("tiny", window=10, batch_size=4, epochs=3, drop_d=0.25)
    with pytest.raises(DistributedError, match=r"written by a run of 2 process\(es\) under torchrun: resume it"):
        train(cfg, ChunkBatches(toy(), batch_size=4, window=10, seed=cfg.seed), [], tmp_path / "killed",
              progress=False)


def test_a_batch_that_does_not_split_over_the_processes_is_refused():
    check_batch_size(World(0, 2), 4)
    with pytest.raises(DistributedError, match=r"batch_size=4 does not split over 3 processes"):
        check_batch_size(World(1, 3), 4)


def test_torchrun_runs_an_experiment_and_rank_0_alone_records_it(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "srnn.experiment", "music", "--dataset", "jsb", "--profile", "smoke", "--name", "ddp",
           "--set", "epochs=1", "patience=0", "batch_size=8", "d_dim=8", "z_dim=4", "mlp_dim=8", "device=cpu",
           "--iwae-samples", "1",
           "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results")]
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("test ELBO per step") == 1                    # one record, by rank 0
    records = list((tmp_path / "results" / "music").glob("*/run.json"))
    assert len(records) == 1 and '"processes": 2' in records[0].read_text()
    assert records[0].parent.name == "jsb-npz-smooth-resq-ddp-2proc"
