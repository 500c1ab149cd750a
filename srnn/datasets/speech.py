"""Speech as the paper models it: raw 16 kHz audio in 200-sample frames (supplementary 1.1).

Preparing a corpus (:func:`prepare_timit`, :func:`prepare_blizzard`, :func:`prepare_folder`,
:func:`prepare_sample`) writes it once to disk as 16-bit PCM (see
:mod:`srnn.datasets.speech_prepare`); :func:`load_prepared` turns that folder into a data set:

- ``train``: 2 s chunks (160 steps) in windows of 40 steps (0.5 s), the state zero for
  the first window and carried over the next three (:class:`srnn.datasets.batching.ChunkBatches`);
- ``test``: the paper's test sequences. Blizzard: 0.5 s pieces (the metric is the bound
  per 0.5 s sequence); TIMIT: whole utterances (the bound summed over an utterance,
  averaged over utterances). ``test_pass="whole"`` runs each sequence in one pass, so
  that the backward GRU sees all of it: a TIMIT utterance as the original code's test does,
  with u = frames[:-1] and x = frames[1:] (its first frame only an input, L - 1 frames
  scored); a 0.5 s piece with all its 40 frames scored, the first from u_1 = 0, since the
  paper's Blizzard metric is the bound of the whole piece (the original code has no
  Blizzard test to follow). ``"windows"`` cuts each sequence into windows of ``window``
  steps whose rows carry the state, scoring every frame from u_1 = 0; ``test_windows`` is
  always the latter, a second estimator.
- ``valid``: the same sequences of the validation split in windows; with
  ``valid_state="zero"`` (the original) every window starts from a zero state, with
  ``"carry"`` each continues the window before it.

Loading checks every split file against the manifest: its size always, its sha256 unless
``verify=False`` (a run's record then names data it really trained on; unchanged files are
not read again, see ``sha256-cache.json`` in :mod:`srnn.datasets.speech_prepare`).

Every split is normalized on the fly with the mean and std of the training samples:
x = (pcm / 32768 - mean) / std. Frames x_t have ``samples_per_step`` = 200 samples, so a
bound per step divided by 200 is a bound per sample. From a shell, :mod:`srnn.speech`
prepares a corpus.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..files import read_json
from .audio import INT16_SCALE, write_wav
from .batching import Batch, ChunkBatches, pad_sequences, shifted_input
from .speech_corpora import blizzard, folder, sample, timit
from .speech_prepare import FORMAT_VERSION, SHA256_CACHE, PreparationError, prepare, sha256_cached

UNITS = ("utterance", "0.5 s")
__all__ = ["SpeechData", "SequenceWindows", "load_prepared", "prepare", "prepare_blizzard",
           "prepare_folder", "prepare_sample", "prepare_timit", "PreparationError"]


def prepare_timit(root, out_root, valid_fraction: float = 0.05, seed: int = 1234, **options) -> Path:
    """TIMIT (LDC93S1) in the LDC layout; see :func:`srnn.datasets.speech_prepare.prepare` for options."""
    return prepare(timit(root, valid_fraction, seed), out_root, **options)


def prepare_blizzard(root, out_root, seed: int = 1234, **options) -> Path:
    """Blizzard Challenge 2013 recordings (any format and rate), split 90/5/5 by file."""
    return prepare(blizzard(root, seed), out_root, **options)


def prepare_folder(root, out_root, fractions=(0.05, 0.05), seed: int = 1234, **options) -> Path:
    """Your own recordings: every audio file under ``root``; (valid, test) fractions by file."""
    return prepare(folder(root, "folder", tuple(fractions), seed), out_root, **options)


def prepare_sample(out_root, seed: int = 1234, **options) -> Path:
    """The LibriSpeech excerpt shipped in ``data/speech/`` (split 90/5/5 by file)."""
    return prepare(sample(seed), out_root, **options)


class SequenceWindows(Sequence):
    """Evaluation batches over whole sequences of a prepared split, read lazily.

    Sequences (given as first step and number of steps in the split's flat PCM) are
    grouped ``batch_size`` at a time, longest first, and padded with a zero mask. With
    ``window`` they are cut into windows of that many steps, u_t = x_{t-1} within each
    sequence and u_1 = 0; the first window of a group has ``reset=True`` and the next ones
    continue its rows, or, with ``carry=False``, start from zero too. With ``window=None``
    each group is one batch, the whole sequences in one pass, with u = frames[:-1] and
    x = frames[1:]: the first frame of a sequence is only an input.
    """

    def __init__(self, pcm: np.ndarray, spans: list[tuple[int, int]], batch_size: int,
                 window: int | None, mean: float, std: float, carry: bool = True):
        self.pcm, self.window, self.mean, self.std, self.carry = pcm, window, mean, std, carry
        order = sorted(spans, key=lambda span: -span[1])
        self.groups = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        self.index = [(g, k) for g, group in enumerate(self.groups)
                      for k in range(1 if window is None else -(-group[0][1] // window))]
        self.num_sequences = len(spans)
        self.num_steps = sum(n for _, n in spans) - (len(spans) if window is None else 0)
        self._cached: tuple[int, Batch] | None = None

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> Batch:
        if not -len(self) <= i < len(self):
            raise IndexError(f"batch {i} of {len(self)}")
        g, k = self.index[i]
        if self._cached is None or self._cached[0] != g:
            frames, mask = pad_sequences([self._frames(*span) for span in self.groups[g]])
            whole = Batch(frames, shifted_input(frames), mask) if self.window else \
                Batch(frames[:, 1:], frames[:, :-1], mask[:, 1:])
            self._cached = (g, whole)
        whole = self._cached[1]
        if self.window is None:
            return whole
        w = slice(k * self.window, (k + 1) * self.window)
        return Batch(whole.x[:, w], whole.u[:, w], whole.mask[:, w], reset=(k == 0 or not self.carry))

    def _frames(self, first: int, steps: int) -> np.ndarray:
        return (np.asarray(self.pcm[first:first + steps], dtype=np.float32) - self.mean) / self.std


@dataclass
class SpeechData:
    """A prepared speech corpus in the data-set protocol of :mod:`srnn.experiment`."""

    name: str                  # "timit", "blizzard", "sample", "folder"; "-perm" if permuted
    fingerprint: dict          # settings and split checksums from the manifest
    train: ChunkBatches
    valid: SequenceWindows
    test: SequenceWindows
    test_windows: SequenceWindows    # the second estimator: test windows carrying the state
    sequence_unit: str         # what one test sequence is: "utterance" or "0.5 s"
    samples_per_step: int      # 200: divide a bound per step by this for one per sample
    sample_rate: int
    mean: float                # of the training samples, floats in [-1, 1)
    std: float
    permutation: np.ndarray | None   # the within-frame order, if the data were permuted
    manifest: dict

    def waveform(self, x) -> np.ndarray:
        """Frames x of shape (..., T, 200), normalized (and permuted) as the model sees
        them, back to audio samples in [-1, 1]: (..., T * 200), e.g. for write_wav."""
        x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
        samples = x * self.std + self.mean
        if self.permutation is not None:
            samples = samples[..., np.argsort(self.permutation)]
        return samples.reshape(*samples.shape[:-2], -1).astype(np.float32)

    def write_samples(self, model, folder: str | Path, count: int = 4, seconds: float = 2.0) -> list[Path]:
        """Sample ``count`` waveforms of ``seconds`` from p(x) (``model.generate``) and
        write them, back in audio units, as ``sample<i>.wav`` (16-bit, 16 kHz)."""
        steps = round(seconds * self.sample_rate / self.samples_per_step)
        with torch.no_grad():
            audio = self.waveform(model.generate(steps, batch_size=count))
        return [write_wav(Path(folder) / f"sample{i + 1}.wav", a, self.sample_rate) for i, a in enumerate(audio)]


def load_prepared(path: str | Path, batch_size: int, window: int = 40, seed: int = 0,
                  unit: str | None = None, eval_batch_size: int | None = None,
                  valid_state: str = "zero", test_pass: str = "whole", verify: bool = True) -> SpeechData:
    """The prepared folder ``path`` as a data set; ``unit`` overrides the corpus's test
    sequence ("utterance" or "0.5 s"), ``seed`` orders the training chunks; ``valid_state``
    and ``test_pass`` as in :class:`srnn.config.Config` (see the module's docstring);
    ``verify`` checks the split files' sha256 against the manifest."""
    path = Path(path)
    manifest = _read_manifest(path)
    unit = unit or manifest["sequence_unit"]
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    d, chunk = manifest["samples_per_step"], manifest["chunk_steps"]
    norm = manifest["normalization"]
    mean, std = norm["mean"] * INT16_SCALE, norm["std"] * INT16_SCALE
    pcm = {split: _memmap(path, manifest, split) for split in manifest["splits"]}
    if verify:
        _verify(path, manifest)
    chunks = manifest["splits"]["train"]["chunks"]
    if chunks < batch_size:
        raise PreparationError(f"{path} has {chunks} training chunk(s) of {chunk} steps, fewer than one batch of "
                               f"{batch_size}: train with --set batch_size={chunks} (batch_size={chunks} in "
                               f"Python) or less, or prepare more audio")
    train = ChunkBatches(pcm["train"][:chunks * chunk].reshape(chunks, chunk, d), batch_size, window,
                         seed, mean=mean, std=std)
    piece = round(0.5 * manifest["sample_rate"] / d)     # steps in 0.5 s
    evals, size = {}, eval_batch_size or batch_size
    for split in ("valid", "test"):
        spans = []
        for rec in manifest["splits"][split]["recordings"]:
            if unit == "utterance":
                spans.append((rec["first_step"], rec["steps"]))
            else:
                spans += [(rec["first_step"] + k * piece, piece) for k in range(rec["steps"] // piece)]
        if not spans:
            raise PreparationError(f"{path}: the {split} split has no whole {unit} sequence; "
                                   f"load it with unit='utterance'")
        if split == "valid":
            evals[split] = SequenceWindows(pcm[split], spans, size, window, mean, std, carry=valid_state == "carry")
        else:
            evals["test_windows"] = SequenceWindows(pcm[split], spans, size, window, mean, std)
            whole = None if unit == "utterance" else piece      # a piece: one window of all its frames
            evals[split] = SequenceWindows(pcm[split], spans, size, whole, mean, std) if test_pass == "whole" \
                else evals["test_windows"]
    perm = manifest["permutation"]
    fingerprint = {"corpus": manifest["corpus"], "settings_sha256": manifest["settings_sha256"],
                   "splits": {s: manifest["splits"][s]["sha256"] for s in manifest["splits"]},
                   "mean": norm["mean"], "std": norm["std"], "sequence_unit": unit,
                   "permute_seed": perm and perm["seed"],
                   "recordings": {s: len(manifest["splits"][s]["recordings"]) for s in manifest["splits"]},
                   "left_out": len(manifest["skipped"]) + len(manifest["too_short"])}
    return SpeechData(manifest["corpus"] + ("-perm" if perm else ""), fingerprint, train,
                      evals["valid"], evals["test"], evals["test_windows"], unit, d, manifest["sample_rate"],
                      norm["mean"], norm["std"], perm and np.array(perm["order"]), manifest)


def _read_manifest(path: Path) -> dict:
    file = path / "manifest.json"
    again = "prepare the corpus with python -m srnn.speech (it prints the folder to give)"
    if not path.is_dir():
        raise PreparationError(f"the prepared folder {path} does not exist: {again}")
    if not file.is_file():
        raise PreparationError(f"{path} holds no manifest.json: it is not a prepared speech folder, or its "
                               f"preparation did not finish: {again}")
    manifest = read_json(file, fix=f"delete {path} and prepare again")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise PreparationError(f"{file} has format {manifest.get('format_version')}, this code reads "
                               f"{FORMAT_VERSION}; delete {path} and prepare again")
    return manifest


def _memmap(path: Path, manifest: dict, split: str) -> np.ndarray:
    """The split's int16 samples as (steps, 200) frames, checked against the manifest."""
    info, d = manifest["splits"][split], manifest["samples_per_step"]
    file = path / info["file"]
    size = file.stat().st_size if file.is_file() else None
    if size != 2 * info["samples"]:
        raise PreparationError(f"{file} has {size} bytes, the manifest says {2 * info['samples']}: "
                               f"the prepared data is damaged; delete {path} and prepare again")
    return np.memmap(file, dtype=np.int16, mode="r", shape=(info["steps"], d))


def _verify(path: Path, manifest: dict) -> None:
    """Each split file has the sha256 the manifest gives it (hashing only files whose size
    or times changed since they were last hashed)."""
    splits = manifest["splits"].values()
    files = [path / info["file"] for info in splits]
    for file, info, sha256 in zip(files, splits, sha256_cached(files, path / SHA256_CACHE)):
        if sha256 != info["sha256"]:
            raise PreparationError(f"{file} has sha256 {sha256[:16]}..., the manifest says "
                                   f"{info['sha256'][:16]}...: the prepared data was changed or damaged; "
                                   f"delete {path} and prepare again")
