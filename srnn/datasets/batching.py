"""Batches for truncated backpropagation through time, and padding of whole sequences.

A training data source is anything with ``len(source)`` (updates per epoch) and
``source.batches(epoch, start=0)``, which yields that epoch's :class:`Batch` es in a
fixed order from ``start`` on. The order depends only on the source's seed and the epoch,
so a run resumed mid-epoch sees exactly the batches it would have seen.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Batch:
    """x, u: (B, T, D) float32; mask: (B, T) float32, 1 for real steps.

    ``reset`` says whether the model state starts from zero (True) or continues the
    state that the previous batch of the same epoch ended in (False). With ``scale`` =
    (mean, std), x and u hold raw samples (16-bit PCM: a quarter of the bytes to copy) that
    :meth:`to` normalizes to (v - mean) / std where the model runs, and u_1 = 0 when ``reset``.
    """

    x: torch.Tensor
    u: torch.Tensor
    mask: torch.Tensor
    reset: bool = True
    scale: tuple[float, float] | None = None

    def to(self, device) -> Batch:
        """The batch on ``device``, as float32; to a GPU from pinned memory, without waiting
        for the copy; raw samples are normalized there."""
        device = torch.device(device)
        if device.type == "cuda":
            move = lambda t: (t if t.is_pinned() else t.pin_memory()).to(device, non_blocking=True)
        else:
            move = lambda t: t.to(device)
        x, u, mask = move(self.x), move(self.u), move(self.mask)
        if self.scale is not None:
            mean, std = self.scale
            x, u = ((t.to(torch.float32) - mean) / std for t in (x, u))
            if self.reset:
                u[:, 0] = 0.0
        return Batch(x, u, mask, self.reset)

    def rows(self, part: slice) -> Batch:
        """The batch's rows ``part``."""
        return Batch(self.x[part], self.u[part], self.mask[part], self.reset, self.scale)


def shifted_input(x: torch.Tensor) -> torch.Tensor:
    """u_t = x_{t-1} with u_1 = 0 (FACTS.md section 1), along dim 1 of (B, T, D)."""
    u = torch.zeros_like(x)
    u[:, 1:] = x[:, :-1]
    return u


class StreamBatches:
    """Rows that continue one another across batches, as in the SRNN authors' arrays.

    x, u: (N, T, D) with N a multiple of ``batch_size``; batch i holds rows
    [i*B, (i+1)*B), and row j of batch i+1 continues row j of batch i. The state is reset
    only at the first batch of an epoch and the order never changes.
    """

    def __init__(self, x: np.ndarray, u: np.ndarray, batch_size: int):
        if x.shape != u.shape or x.ndim != 3:
            raise ValueError(f"x and u must be (N, T, D) arrays of one shape, got {x.shape} and {u.shape}")
        n = (len(x) // batch_size) * batch_size
        if n == 0:
            raise ValueError(f"{len(x)} rows cannot fill one batch of {batch_size}")
        self.x = torch.as_tensor(x[:n], dtype=torch.float32)
        self.u = torch.as_tensor(u[:n], dtype=torch.float32)
        self.batch_size = batch_size

    def __len__(self) -> int:
        return len(self.x) // self.batch_size

    def batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        mask = torch.ones(self.batch_size, self.x.shape[1])
        for i in range(start, len(self)):
            rows = slice(i * self.batch_size, (i + 1) * self.batch_size)
            yield Batch(self.x[rows], self.u[rows], mask, reset=(i == 0))


class ChunkBatches:
    """Long chunks cut into windows: each batch of chunks gives ``T // window`` updates.

    The supplementary's speech recipe: 2 s chunks (160 steps), 0.5 s windows (40 steps),
    the state zero for the first window and carried over the next three. Chunks are
    shuffled every epoch with a generator seeded by (seed, epoch). ``x`` may be a numpy
    memmap (e.g. of 16-bit PCM): only the chunks of the current batch are read, and they
    are normalized to (x - mean) / std; integer samples (with u = x shifted) travel raw and
    are normalized by ``Batch.to`` on the device, to the same numbers.
    """

    def __init__(self, x: np.ndarray, batch_size: int, window: int, seed: int = 0,
                 u: np.ndarray | None = None, mean: float = 0.0, std: float = 1.0):
        if x.ndim != 3 or x.shape[1] % window:
            raise ValueError(f"chunks must be (N, T, D) with T a multiple of window={window}, got {x.shape}")
        if len(x) < batch_size:
            raise ValueError(f"{len(x)} chunks cannot fill one batch of {batch_size}")
        if not std > 0:
            raise ValueError(f"std must be > 0 to normalize chunks, got {std}")
        self.x, self.u = x, u
        self.batch_size, self.window, self.seed = batch_size, window, seed
        self.mean, self.std = mean, std
        self.windows_per_chunk = x.shape[1] // window

    def __len__(self) -> int:
        return (len(self.x) // self.batch_size) * self.windows_per_chunk

    def batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.x))
        w, per = self.window, self.windows_per_chunk
        raw = self.u is None and np.issubdtype(self.x.dtype, np.integer)
        for b in range(start // per, len(self) // per):
            rows = np.sort(order[b * self.batch_size:(b + 1) * self.batch_size])
            if raw:
                x, scale = torch.as_tensor(np.asarray(self.x[rows])), (self.mean, self.std)
            else:
                x, scale = self._read(self.x, rows), None
            u = shifted_input(x) if self.u is None else self._read(self.u, rows)
            mask = torch.ones(len(rows), w)
            for k in range(start - b * per if b == start // per else 0, per):
                yield Batch(x[:, k * w:(k + 1) * w], u[:, k * w:(k + 1) * w], mask, reset=(k == 0), scale=scale)

    def _read(self, array: np.ndarray, rows: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(array[rows]), dtype=torch.float32)
        return x if (self.mean, self.std) == (0.0, 1.0) else (x - self.mean) / self.std


def pad_sequences(seqs: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad (T_i, D) arrays to (N, T_max, D) with zeros; return it and the (N, T_max) mask."""
    if not seqs:
        raise ValueError("no sequences to pad")
    t_max, dim = max(len(s) for s in seqs), seqs[0].shape[1]
    x = torch.zeros(len(seqs), t_max, dim)
    mask = torch.zeros(len(seqs), t_max)
    for i, s in enumerate(seqs):
        x[i, :len(s)] = torch.as_tensor(np.asarray(s), dtype=torch.float32)
        mask[i, :len(s)] = 1
    return x, mask


def sequence_batches(seqs: Sequence[np.ndarray], batch_size: int) -> Iterator[Batch]:
    """Whole variable-length sequences (for evaluation), padded per batch, longest first
    so that each batch wastes little padding; u_t = x_{t-1} within each sequence."""
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
    for k in range(0, len(order), batch_size):
        x, mask = pad_sequences([seqs[i] for i in order[k:k + batch_size]])
        yield Batch(x, shifted_input(x), mask, reset=True)
