"""Polyphonic music as 88-key piano rolls (supplementary section 1.2; FACTS.md section 4).

A piano roll is a float32 (T, 88) array of 0/1 where column j is MIDI note j + 21. Three
file formats hold the four data sets (JSB Chorales, Nottingham, MuseData, Piano-midi.de):

- ``pickle``: Boulanger-Lewandowski et al. (2012)'s Python 2 pickle, a dict of splits,
  each a list of pieces, each a list of time steps, each a tuple of MIDI notes (numpy
  int64 scalars). Read with a restricted unpickler that builds nothing but those scalars.
- ``classic``: the same piano rolls as MATLAB files (``traindata``/``validdata``/
  ``testdata``, 1 x N cells of T x 88 uint8).
- ``npz``: the SRNN authors' own arrays, on a different time grid. Train and valid are
  100-step rows streamed in batches of 16: row j of batch i+1 continues row j of batch i,
  and stream j+1 continues stream j, so the rows are one long sequence cut in 16 parts.
  Test holds whole pieces, padded, with ``mask_test``; ``u_test`` is NaN where padded and
  its first step is the frame before the piece's first target, not zero.

:func:`dataset` turns a file into the data set protocol of :mod:`srnn.experiment`
(``name``, ``fingerprint``, ``train``, ``valid``, ``test``); :func:`pieces` gives the raw
rolls of one split for statistics and plots.
"""
from __future__ import annotations

import hashlib
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
import torch

from .batching import Batch, StreamBatches, sequence_batches
from .registry import DATASETS, FILES, FINGERPRINTS, DataError, fetch

KEYS, LOWEST_NOTE = 88, 21
SPLITS = ("train", "valid", "test")
NAMES = tuple(DATASETS)
NPZ_KEYS = ("x_train", "u_train", "x_valid", "u_valid", "x_test", "u_test", "mask_test")
STORED_ROWS = 16  # the authors' arrays stream 16 rows per batch


def roll_from_notes(steps, where: str = "piece") -> np.ndarray:
    """A list of time steps, each an iterable of MIDI notes 21..108, as a (T, 88) roll."""
    roll = np.zeros((len(steps), KEYS), np.float32)
    for t, chord in enumerate(steps):
        for note in chord:
            if not isinstance(note, (int, np.integer)) or not LOWEST_NOTE <= note < LOWEST_NOTE + KEYS:
                raise DataError(f"{where}, step {t}: {note!r} is not a MIDI note in 21..108")
            roll[t, int(note) - LOWEST_NOTE] = 1
    return roll


class _NotesUnpickler(pickle.Unpickler):
    """Allows exactly what the note pickles need: numpy's scalar constructor and dtype."""

    _SCALAR = np.int64(0).__reduce__()[0]  # numpy's scalar reconstructor, any numpy version
    ALLOWED = {("numpy.core.multiarray", "scalar"): _SCALAR,   # written by numpy 1 (Python 2)
               ("numpy._core.multiarray", "scalar"): _SCALAR,  # written by numpy 2
               ("numpy", "dtype"): np.dtype}

    def __init__(self, file, path: Path):
        super().__init__(file, encoding="latin1")
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise DataError(f"{self.path} asks to build {module}.{name}, which a piano-roll pickle "
                            "never needs; refusing to load it. Use the registered file "
                            "(srnn.datasets.registry.fetch) or the .mat form instead.")
        return self.ALLOWED[(module, name)]


def load_pickle(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Split -> list of (T, 88) rolls, from a Boulanger-Lewandowski pickle."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = _NotesUnpickler(f, path).load()
    except DataError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError,
            AttributeError, MemoryError) as error:
        raise DataError(f"{path} is not a readable piano-roll pickle ({type(error).__name__}: "
                        f"{error}); it may be truncated: delete it and fetch it again") from error
    if not isinstance(data, dict) or set(data) != set(SPLITS):
        raise DataError(f"{path} must hold a dict with keys {SPLITS}; delete it and fetch it again")
    return {split: [roll_from_notes(piece, f"{path} {split}[{i}]") for i, piece in enumerate(data[split])]
            for split in SPLITS}


def load_mat(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Split -> list of (T, 88) rolls, from a MATLAB file with traindata/validdata/testdata."""
    path = Path(path)
    try:
        mat = scipy.io.loadmat(path)
    except Exception as error:         # damaged bytes surface as zlib, struct, value or MatReadError errors
        raise DataError(f"{path} is not a readable MATLAB file ({type(error).__name__}: {error}); it may be "
                        "damaged or truncated: delete it and fetch it again") from None
    splits = {}
    for split in SPLITS:
        cells = mat.get(split + "data")
        if cells is None or cells.dtype != object:
            raise DataError(f"{path} has no cell array {split + 'data'!r}; is it a piano-roll .mat?")
        splits[split] = [_binary(np.asarray(c), f"{path} {split}data{{{i + 1}}}")
                         for i, c in enumerate(cells.ravel())]
    return splits


def _binary(roll: np.ndarray, where: str) -> np.ndarray:
    if roll.ndim != 2 or roll.shape[1] != KEYS or not np.isin(roll, (0, 1)).all():
        raise DataError(f"{where} must be a T x {KEYS} array of 0/1, got shape {roll.shape}")
    return roll.astype(np.float32)


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """The SRNN authors' arrays, checked, with the NaN padding of ``u_test`` set to 0, plus
    ``s_train`` and ``s_valid``: the long sequence behind each split's streamed rows."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in NPZ_KEYS}
    except KeyError as error:
        raise DataError(f"{path} lacks the array {error}; the SRNN arrays hold {NPZ_KEYS}") from error
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise DataError(f"{path} is not a readable .npz ({error}); it may be truncated: "
                        "delete it and fetch it again") from error
    mask = arrays["mask_test"]
    if arrays["x_test"].shape != arrays["u_test"].shape or mask.shape != arrays["x_test"].shape[:2]:
        raise DataError(f"{path}: x_test, u_test must be (N, T, 88) and mask_test (N, T), got "
                        f"{arrays['x_test'].shape}, {arrays['u_test'].shape}, {mask.shape}")
    lengths = mask.sum(1).astype(int)
    if (mask != (np.arange(mask.shape[1]) < lengths[:, None])).any():
        raise DataError(f"{path}: mask_test must be 1 on a prefix of each row and 0 after it")
    if np.isnan(arrays["u_test"][mask == 1]).any():
        raise DataError(f"{path}: u_test is NaN inside a piece, not only in the padding")
    arrays["u_test"][mask == 0] = 0.0
    for key in NPZ_KEYS[:-1]:
        if arrays[key].shape[-1] != KEYS or not np.isin(arrays[key], (0, 1)).all():
            raise DataError(f"{path}: {key} must be 0/1 rolls with {KEYS} keys")
    for split in ("train", "valid"):
        arrays["s_" + split] = _unstream(arrays["x_" + split], arrays["u_" + split], STORED_ROWS,
                                         f"{path} {split}")
    return arrays


def _unstream(x: np.ndarray, u: np.ndarray, rows: int, where: str) -> np.ndarray:
    """The long sequence s (N + 1, 88) behind streamed rows: u_t = s_t, x_t = s_{t+1}.

    Checks the streaming property: u_t = x_{t-1} inside each row, row j of batch i+1
    starts where row j of batch i ends, and stream j+1 starts where stream j ends.
    """
    if x.ndim != 3 or x.shape != u.shape or len(x) % rows:
        raise DataError(f"{where}: x and u must be (N, T, 88) with N a multiple of {rows}, got "
                        f"{x.shape} and {u.shape}")
    streams = x.reshape(-1, rows, *x.shape[1:]).swapaxes(0, 1).reshape(-1, KEYS)
    inputs = u.reshape(-1, rows, *u.shape[1:]).swapaxes(0, 1).reshape(-1, KEYS)
    if not np.array_equal(inputs[1:], streams[:-1]):
        raise DataError(f"{where}: the rows are not one sequence streamed in {rows} rows "
                        "(u must equal x one step earlier across rows and batches)")
    return np.concatenate([inputs[:1], streams])


def stream_rows(s: np.ndarray, batch_size: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut one long sequence s (N + 1, 88) into streamed rows x, u of shape (M, window, 88).

    x = s[1:] and u = s[:-1]. The N targets are cut into ``batch_size`` contiguous streams
    of L = floor(N / (batch_size * window)) * window steps (the last N - batch_size * L
    steps are dropped), each stream into L / window rows; batch i, row j (array row
    i * batch_size + j) is the i-th window of stream j. On the authors' sequences with
    batch_size 16 and window 100 this gives back their arrays exactly.
    """
    steps = (len(s) - 1) // (batch_size * window) * window
    if steps == 0:
        raise DataError(f"{len(s) - 1} steps cannot fill one batch of {batch_size} rows of {window} steps")

    def rows(seq: np.ndarray) -> np.ndarray:
        cut = seq[:batch_size * steps].reshape(batch_size, steps // window, window, KEYS)
        return np.ascontiguousarray(cut.swapaxes(0, 1).reshape(-1, window, KEYS))

    return rows(s[1:]), rows(s[:-1])


def classic_sequence(rolls: list[np.ndarray]) -> np.ndarray:
    """The training pieces back to back, in file order, after one all-zero frame (u_1 = 0).

    The state and the input carry over from one piece into the next, as in the authors'
    streamed arrays; :func:`stream_rows` then cuts it into training rows.
    """
    return np.concatenate([np.zeros((1, KEYS), np.float32), *rolls])


def _masked_batches(x: np.ndarray, u: np.ndarray, mask: np.ndarray, batch_size: int) -> list[Batch]:
    """Given padded pieces (and their u), longest first, each batch cut to its longest piece."""
    lengths = mask.sum(1).astype(int)
    order = np.argsort(-lengths, kind="stable")
    batches = []
    for k in range(0, len(order), batch_size):
        rows = order[k:k + batch_size]
        t = lengths[rows].max()
        batches.append(Batch(*(torch.as_tensor(a[rows, :t], dtype=torch.float32) for a in (x, u, mask))))
    return batches


def fingerprint(rolls: list[np.ndarray]) -> dict:
    """Pieces, frames, active notes and a sha256 of the rolls in a canonical byte form:
    for each piece in order, its length as little-endian uint32, then its (T, 88) 0/1
    values as uint8, row by row."""
    digest = hashlib.sha256()
    for roll in rolls:
        digest.update(np.uint32(len(roll)).astype("<u4").tobytes())
        digest.update(np.ascontiguousarray(roll, dtype=np.uint8).tobytes())
    return {"pieces": len(rolls), "frames": int(sum(len(r) for r in rolls)),
            "notes": int(sum(r.sum() for r in rolls)), "sha256": digest.hexdigest()}


def _source(name: str, form: str):
    if name not in DATASETS:
        raise ValueError(f"unknown music data set {name!r}; choose one of {NAMES}")
    if form not in DATASETS[name]:
        raise ValueError(f"data set {name!r} comes in forms {tuple(DATASETS[name])}, not {form!r}")
    return FILES[DATASETS[name][form]]


def _load(name: str, form: str, cache) -> tuple[Path, dict]:
    """The verified file and its contents: the npz arrays, or split -> rolls."""
    path = fetch(_source(name, form), cache)
    return path, {"npz": load_npz, "classic": load_mat, "pickle": load_pickle}[form](path)


def _rolls(form: str, content: dict, split: str) -> list[np.ndarray]:
    if form != "npz":
        return content[split]
    if split == "test":
        lengths = content["mask_test"].sum(1).astype(int)
        return [x[:t] for x, t in zip(content["x_test"], lengths)]
    return np.split(content["s_" + split][1:], STORED_ROWS)


def pieces(name: str, form: str = "classic", split: str = "train", cache=None) -> list[np.ndarray]:
    """The (T, 88) rolls of one split. For ``npz`` train and valid these are the 16 stored
    streams (piece boundaries are not recorded there); test pieces are unpadded."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return _rolls(form, _load(name, form, cache)[1], split)


def check_fingerprint(found: dict, expected: dict, path: Path) -> None:
    """One error listing every split whose content differs from the registry."""
    wrong = [f"{split}: found {found[split]}, expected {expected[split]}"
             for split in SPLITS if found[split] != expected[split]]
    if wrong:
        raise DataError(f"{path} does not hold the expected piano rolls:\n  " + "\n  ".join(wrong) +
                        "\nDelete the file so that a verified copy is fetched again.")


@dataclass
class MusicData:
    """A data set in the protocol of :mod:`srnn.experiment`."""

    name: str             # e.g. "jsb-npz"
    fingerprint: dict     # file, sha256 and per-split content (see :func:`fingerprint`)
    train: StreamBatches  # streamed rows, state carried across batches
    valid: list[Batch]
    test: list[Batch]


def dataset(name: str, form: str = "npz", batch_size: int = 16, window: int = 100,
            cache=None, valid_state: str = "zero") -> MusicData:
    """One music data set: verified file, checked content, training rows and eval batches.

    ``npz``: train is the authors' stream (their exact arrays for batch_size 16 and window
    100, otherwise the same sequence re-cut by :func:`stream_rows`); test the given padded
    pieces with their masks and their own u. Validation, with ``valid_state="zero"`` (the
    original code): the authors' 100-step validation rows, each from a zero state, the
    same rows whatever the batch size; with ``"carry"``: the validation stream cut like
    the training stream, each row continuing the row before it. ``classic``/``pickle``:
    train rows cut from :func:`classic_sequence` of the training pieces; valid and test
    are whole pieces, padded, with masks and u_1 = 0.
    """
    path, content = _load(name, form, cache)
    found = {split: fingerprint(_rolls(form, content, split)) for split in SPLITS}
    check_fingerprint(found, FINGERPRINTS[(name, "npz" if form == "npz" else "classic")], path)
    source = _source(name, form)
    stamp = {"dataset": name, "form": form, "file": source.name, "sha256": source.sha256, **found}
    if form == "npz":
        train = stream_rows(content["s_train"], batch_size, window)
        if valid_state == "zero":
            rows = StreamBatches(content["x_valid"], content["u_valid"], STORED_ROWS).batches(0)
            valid = [Batch(b.x, b.u, b.mask, reset=True) for b in rows]
        else:
            valid = list(StreamBatches(*stream_rows(content["s_valid"], batch_size, window), batch_size).batches(0))
        test = _masked_batches(content["x_test"], content["u_test"], content["mask_test"], batch_size)
    else:
        train = stream_rows(classic_sequence(content["train"]), batch_size, window)
        valid, test = (list(sequence_batches(content[split], batch_size)) for split in ("valid", "test"))
    return MusicData(f"{name}-{form}", stamp, StreamBatches(*train, batch_size), valid, test)
