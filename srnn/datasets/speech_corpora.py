"""Which recordings a speech corpus holds and which split each goes to (supplementary 1.1).

- TIMIT (LDC93S1) in the LDC layout ``TRAIN/DR1/FCJF0/SA1.WAV``: the predefined TEST set
  is the test split; TRAIN is split 95/5 into train/valid. SA sentences are included.
- Blizzard 2013, or any folder of recordings: split 90/5/5 by file.
- The embedded sample under ``data/speech/`` (see :func:`srnn.datasets.registry.data_dir`): a folder corpus.

Splits are reproducible on every machine: the files are sorted by a canonical key (for
TIMIT the upper-cased ``TRAIN/DR1/FCJF0/SA1``, so lowercase copies split the same way)
and shuffled by a seeded numpy generator. The key does not depend on where the corpus is
or which folder above it was given (TIMIT: below its TRAIN and TEST; a folder corpus:
below the deepest folder holding all its recordings), so the same recordings have the
same keys, the same splits and, in :mod:`srnn.datasets.speech_prepare`, the same prepared folder.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import UserError
from .registry import DATA_DIR, data_dir

SAMPLE = Path("speech", "librispeech")      # the embedded sample, under the shipped data folder
SAMPLE_DIR = DATA_DIR / SAMPLE
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".sph", ".nist", ".aif", ".aiff", ".au")
TIMIT_TRAIN_FILES, TIMIT_TEST_FILES = 4620, 1680

WHERE_TO_GET = {
    "timit": ("TIMIT is sold by the LDC as catalog LDC93S1 (https://catalog.ldc.upenn.edu/LDC93S1). "
              "Expected layout: <folder>/TRAIN/DR1/FCJF0/SA1.WAV and <folder>/TEST/DR1/FAKS0/SA1.WAV "
              "(NIST SPHERE .WAV files, lowercase names are fine)"),
    "blizzard": ("The Blizzard Challenge 2013 release (Lessac audiobooks, research licence) is at "
                 "https://www.cstr.ed.ac.uk/projects/blizzard/2013/lessac_blizzard2013/. "
                 f"Expected layout: one folder holding the long recordings ({', '.join(AUDIO_SUFFIXES)}, "
                 "any sample rate), searched recursively"),
    "folder": (f"Expected layout: one folder holding recordings ({', '.join(AUDIO_SUFFIXES)}, any "
               "sample rate), searched recursively"),
    "sample": ("The embedded sample ships in data/speech/librispeech (srnn/_data/ in an installed package); "
               "restore it with `git checkout -- data/speech` in a clone, or reinstall the package"),
}


class CorpusError(UserError, FileNotFoundError):
    """A corpus folder that is missing or not laid out as expected."""


@dataclass
class Recording:
    key: str      # canonical name, the sort key of the split
    path: str     # relative to the corpus root, as found on disk (POSIX separators)
    split: str    # "train", "valid" or "test"


@dataclass
class Corpus:
    name: str
    root: Path
    recordings: list[Recording]
    sequence_unit: str            # what a test "sequence" is: "utterance" or "0.5 s"
    split_rule: str               # how the splits were made, for the manifest
    duplicates: list[str] = field(default_factory=list)   # paths left out as copies


def full_corpus(fingerprint: dict) -> bool:
    """Whether a prepared corpus (a run's data fingerprint) is the whole of the corpus the
    paper's Table 1 names, so that its bound may stand in the table's cell: TIMIT with its
    4,620 TRAIN (our train and valid splits) and 1,680 TEST utterances; Blizzard as its
    preparation found it, nothing left out (the paper gives no count to check against).
    Neither permuted within frames."""
    if fingerprint.get("permute_seed") or fingerprint.get("left_out", 1):
        return False
    found = fingerprint.get("recordings", {})
    if fingerprint.get("corpus") == "timit":
        return (found.get("train", 0) + found.get("valid", 0), found.get("test", 0)) == \
            (TIMIT_TRAIN_FILES, TIMIT_TEST_FILES)
    return fingerprint.get("corpus") == "blizzard"


def timit(root: str | Path, valid_fraction: float = 0.05, seed: int = 1234) -> Corpus:
    """TIMIT as users have it; one file per utterance even where converted ``.WAV.wav``
    copies sit beside the SPHERE originals (the original is kept, the copy listed)."""
    root = Path(root)
    base = _timit_base(root)
    found: dict[str, list[Path]] = {}
    for split_dir in sorted(p for p in base.iterdir() if p.is_dir() and p.name.upper() in ("TRAIN", "TEST")):
        for p in sorted(split_dir.rglob("*")):
            rel = p.relative_to(split_dir)
            if len(rel.parts) == 3 and p.name.lower().endswith(".wav") and p.is_file():
                key = "/".join([split_dir.name, *rel.parts[:2], p.name.split(".")[0]]).upper()
                found.setdefault(key, []).append(p)
    recordings, duplicates = [], []
    for key in sorted(found):
        # the SPHERE original is the one named exactly <utterance>.WAV
        keep, *copies = sorted(found[key], key=lambda p: (p.name.count(".") != 1, p.name))
        split = "train" if key.startswith("TRAIN/") else "test"
        recordings.append(Recording(key, keep.relative_to(root).as_posix(), split))
        duplicates += [c.relative_to(root).as_posix() for c in copies]
    train = [r for r in recordings if r.split == "train"]
    if not train or len(train) == len(recordings):
        raise CorpusError(f"TIMIT at {root} has {len(train)} TRAIN and {len(recordings) - len(train)} "
                          f"TEST utterances; both are needed. {WHERE_TO_GET['timit']}.")
    if (len(train), len(recordings) - len(train)) != (TIMIT_TRAIN_FILES, TIMIT_TEST_FILES):
        warnings.warn(f"TIMIT at {root} has {len(train)} TRAIN and {len(recordings) - len(train)} TEST "
                      f"utterances; the full corpus has {TIMIT_TRAIN_FILES} and {TIMIT_TEST_FILES}", stacklevel=2)
    _assign(train, {"valid": valid_fraction}, seed)
    rule = (f"predefined TEST set = test; TRAIN shuffled (sorted keys, numpy default_rng({seed})), "
            f"{valid_fraction:.0%} valid, rest train")
    return Corpus("timit", root, recordings, "utterance", rule, duplicates)


def folder(root: str | Path, name: str = "folder", fractions: tuple[float, float] = (0.05, 0.05),
           seed: int = 1234) -> Corpus:
    """Every recording under ``root``, split by file: ``fractions`` = (valid, test), the
    rest train (Blizzard: 90/5/5). Test sequences are 0.5 s pieces, as for Blizzard."""
    root = Path(root)
    _require_folder(root, name)
    files = [p for p in root.rglob("*") if not p.name.startswith(".") and p.is_file()]
    paths = sorted(p.relative_to(root).as_posix() for p in files if p.suffix.lower() in AUDIO_SUFFIXES)
    if not paths:
        raise CorpusError(f"{name} corpus folder {root} holds {'no audio files' if files else 'no files'}. "
                          f"{WHERE_TO_GET[name]}.")
    if len(paths) < 3:
        raise CorpusError(f"{name} corpus at {root} has {len(paths)} recording(s); splitting by file "
                          f"into train/valid/test needs at least 3. {WHERE_TO_GET[name]}.")
    base = os.path.commonpath([os.path.dirname(p) for p in paths])    # "" when some lie in root
    recordings = [Recording(p[len(base) + 1:] if base else p, p, "train") for p in paths]
    _assign(recordings, {"valid": fractions[0], "test": fractions[1]}, seed, [_holds_a_frame(root / p) for p in paths])
    rule = (f"files shuffled (sorted paths, numpy default_rng({seed})): {fractions[0]:.0%} valid, "
            f"{fractions[1]:.0%} test, rest train")
    return Corpus(name, root, recordings, "0.5 s", rule)


def blizzard(root: str | Path, seed: int = 1234) -> Corpus:
    """Blizzard Challenge 2013: long recordings split 90/5/5 by file."""
    return folder(root, "blizzard", (0.05, 0.05), seed)


def sample(seed: int = 1234) -> Corpus:
    """The embedded LibriSpeech excerpt (data/speech/librispeech, CC BY 4.0)."""
    return folder(data_dir() / SAMPLE, "sample", (0.05, 0.05), seed)


def _assign(recordings: list[Recording], fractions: dict[str, float], seed: int,
            usable: list[bool] | None = None) -> None:
    """Give each named split round(fraction * n) files (at least one), drawn in a seeded
    permutation of the sorted list; the rest keep their split. Files not ``usable`` are never
    drawn (they stay where preparation leaves them out, never emptying a split alone)."""
    order = [i for i in np.random.default_rng(seed).permutation(len(recordings)) if usable is None or usable[i]]
    start = 0
    for split, fraction in fractions.items():
        n = max(1, int(fraction * len(recordings) + 0.5))
        for i in order[start:start + n]:
            recordings[i].split = split
        start += n
    if start >= len(recordings):
        raise CorpusError(f"{len(recordings)} recordings leave none for training after {fractions}")


def _timit_base(root: Path) -> Path:
    """The folder holding TRAIN and TEST: ``root`` itself or a folder up to two levels
    below it (copies often come as ``timit/TIMIT/TRAIN``)."""
    _require_folder(root, "timit")
    level = [root]
    for _ in range(3):
        for candidate in level:
            if {"TRAIN", "TEST"} <= {p.name.upper() for p in _subfolders(candidate)}:
                return candidate
        level = [p for candidate in level for p in _subfolders(candidate)]
    raise CorpusError(f"no TRAIN and TEST folders found in {root} (nor two levels below it). "
                      f"{WHERE_TO_GET['timit']}.")


def _holds_a_frame(path: Path) -> bool:
    """Whether the header of ``path`` promises one 200-sample frame at 16 kHz (a file that cannot
    be read, or holds no samples, will be left out of the data)."""
    try:
        info = sf.info(str(path))
    except Exception:            # libsndfile's errors for a file that is not audio
        return False
    return info.frames * 16000 >= 200 * info.samplerate


def _subfolders(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir())


def _require_folder(root: Path, name: str) -> None:
    if not root.is_dir():
        problem = "is not a folder" if root.exists() else "does not exist"
        raise CorpusError(f"{name} corpus folder {root} {problem}. {WHERE_TO_GET[name]}.")
