"""Test metrics: the ELBO and the importance-weighted bound, per step and per sequence.

Batches whose ``reset`` is False continue the rows of the batch before them (the state is
carried, and their steps are added to the same sequences), so a long sequence can be
evaluated window by window exactly as it was trained. Two per-step estimators are given:
``*_per_step_seq`` is the mean over sequences of each sequence's total divided by its
length (what the original code reported for music), ``*_per_step`` divides the sum over all
sequences by the number of steps. ``*_per_seq`` is the mean total per sequence (the speech
metric: per 0.5 s window for Blizzard, per utterance for TIMIT). ``kl_per_dim`` is the mean
KL per step of each latent dimension: the units with a KL near zero carry no information
(none for the RNN baseline, whose importance-weighted bound is its exact log-likelihood).

With K > 1 samples every sample is a sample path of its own: the ELBO is the mean over the
K paths, and ``*_se`` beside each ELBO is its standard error over them (a one-path bound of
a music model varies by about 0.015 nats per step from draw to draw, the size of the
differences between settings).
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from tqdm import tqdm

from ..datasets.batching import Batch
from ..models.objective import importance_weighted
from .precision import tf32


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: Iterable[Batch], samples: int = 1, sample_chunk: int = 32,
             max_row_steps: int = 2 ** 16, progress: bool = False, desc: str = "evaluate") -> dict:
    """Metrics over all sequences in ``batches``; with ``samples`` = K > 1 also the
    importance-weighted bound with K samples, evaluated ``sample_chunk`` samples at a time,
    or fewer where a batch is long: memory grows with samples x sequences x steps, which
    stays under ``max_row_steps`` (2 ** 16 peaks at about 2.3 GB for the music model).
    The model is evaluated in eval mode (no dropout), in fp32 (no TF32 on a GPU), and left in
    the mode it came in."""
    training = model.training
    model.eval()
    try:
        with tf32(False):
            return _evaluate(model, batches, samples, sample_chunk, max_row_steps, progress, desc)
    finally:
        model.train(training)


def recorded_elbo(model: torch.nn.Module, batches: Iterable[Batch], seed: int, paths: int,
                  progress: bool = False) -> dict:
    """The test ELBO as a record computes it: the mean over ``paths`` sample paths, drawn
    after seeding torch's generator with ``seed`` (the run's seed)."""
    torch.manual_seed(seed)
    return evaluate(model, batches, samples=paths, progress=progress, desc="test ELBO")


def _evaluate(model, batches, samples, sample_chunk, max_row_steps, progress, desc) -> dict:
    device = next(model.parameters()).device
    # A model without a latent (the RNN) gives every sample the same weight, its exact
    # log-likelihood: one draw gives the bound of any K.
    draws = 1 if getattr(model, "noise_dim", None) == 0 else samples
    done = {"ll": [], "kl": [], "log_w": [], "length": []}
    run, groups, states = None, [], []
    kl_dim = torch.zeros((), device=device, dtype=torch.float64)    # + each (z_dim,) sum; the RNN's z_dim is 0

    def flush():
        if run is not None:
            real = run["length"] > 0
            for key in done:
                done[key].append(run[key][..., real])

    for batch in tqdm(batches, desc=desc, disable=not progress, leave=False):
        batch = batch.to(device)
        B, T = batch.x.shape[:2]
        if batch.reset or run is None:
            flush()
            chunk = max(1, min(sample_chunk, max_row_steps // (B * T)))
            groups = [min(chunk, draws - i) for i in range(0, draws, chunk)]
            run = {key: torch.zeros(draws, B, device=device) for key in ("ll", "kl", "log_w")}
            run["length"] = torch.zeros(B, device=device)
            states = [None] * len(groups)
        terms = {"ll": [], "kl": [], "log_w": []}                      # per sample path: (k, B) per group
        for g, (k, out) in enumerate(zip(groups, _sample_groups(model, batch, states, groups))):
            states[g] = out.state
            for key in terms:
                terms[key].append(getattr(out, key).sum(1).view(k, B))
            kl_dim = kl_dim + out.kl_dim.sum((0, 1)).double() / draws
        for key, parts in terms.items():
            run[key] += torch.cat(parts)
        run["length"] += batch.mask.sum(1)
    flush()
    if not done["length"]:
        raise ValueError("no sequences to evaluate: the batches were empty")
    ll, kl = (torch.cat(done[k], 1).double() for k in ("ll", "kl"))      # (paths, sequences)
    length = torch.cat(done["length"]).double()
    elbo = (ll - kl).mean(0)
    metrics = _summary("elbo", elbo, length)
    if draws > 1:
        paths = [_summary("elbo", path, length) for path in ll - kl]
        for key in list(metrics):
            metrics[f"{key}_se"] = torch.tensor([p[key] for p in paths]).std().item() / draws ** 0.5
        metrics["paths"] = draws
    metrics.update(ll_per_step=(ll.mean(0).sum() / length.sum()).item(),
                   kl_per_step=(kl.mean(0).sum() / length.sum()).item(),
                   kl_per_dim=[round(v, 6) for v in (kl_dim.cpu() / length.sum()).tolist()],
                   sequences=len(length), steps=int(length.sum().item()), samples=samples)
    if samples > 1:
        iw = importance_weighted(torch.cat(done["log_w"], 1).double())
        metrics.update(_summary("iwae", iw, length))
    metrics["per_sequence"] = {"elbo": elbo.tolist(), "length": length.tolist()}
    return metrics


class PerGroup(torch.nn.Module):
    """``model`` without its shared path: evaluated whole for every group of samples, as
    before the observed path was shared (what tests and the benchmark compare against)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)


def _sample_groups(model, batch: Batch, states: list, groups: list[int]) -> list:
    """One Output per group of samples; a model that can share the work between the groups
    (SRNN: its deterministic path) does so."""
    if hasattr(model, "sample_groups"):
        return model.sample_groups(batch.x, batch.u, batch.mask, states, groups)
    return [model(batch.x, batch.u, batch.mask, s, samples=k) for s, k in zip(states, groups)]


def _summary(name: str, total: torch.Tensor, length: torch.Tensor) -> dict:
    return {f"{name}_per_step": (total.sum() / length.sum()).item(),
            f"{name}_per_step_seq": (total / length).mean().item(),
            f"{name}_per_seq": total.mean().item()}
