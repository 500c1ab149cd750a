"""Preparation of a speech corpus, written once to disk (supplementary section 1.1).

Every recording is decoded to 16 kHz mono, cut to whole 200-sample frames (the last
partial frame, under 12.5 ms, is dropped) and stored as 16-bit PCM, like the corpora
themselves. Layout of ``<out_root>/<corpus>-<settings hash>/``:

- ``train.i16``, ``valid.i16``, ``test.i16``: each split's recordings one after the
  other, flat int16 (read as numpy memmaps; training never loads a split in memory);
- ``manifest.json``, written last: recordings with their sha256, durations, and where
  they lie in their split's file (``first_step`` and ``steps``, in 200-sample frames),
  the mean and std of the TRAINING samples (applied to every split when loading), the
  settings, and every file that was skipped, too short, downmixed, resampled or clipped.

Other settings (or another file list) give another hash, hence another folder. While
preparing, each recording is appended to ``<split>.i16.partial`` and then logged in
``log/<index>.json`` (atomically); a rerun after an interruption cuts the partial files
back to what the log holds and decodes only the recordings not logged yet. The disk
never holds more than one copy of the prepared audio (about 115 MB per hour).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from srnn.audio import INT16_SCALE, SAMPLE_RATE, AudioError, read_audio, to_int16
from srnn.registry import sha256_of
from srnn.speech_corpora import Corpus, Recording

from .errors import UserError

FORMAT_VERSION = 1
SAMPLES_PER_STEP = 200       # x_t is a frame of 200 samples (12.5 ms)
SPLITS = ("train", "valid", "test")


class PreparationError(UserError, RuntimeError):
    """Preparation could not produce a usable data set; the message says why."""


def prepare(corpus: Corpus, out_root: str | Path, chunk_seconds: float = 2.0,
            permute_seed: int | None = None, skip_bad: bool = False) -> Path:
    """Prepare ``corpus`` under ``out_root`` (or reuse an earlier preparation) and
    return its folder.

    permute_seed: if given, permute the 200 samples within every frame by one fixed
      permutation drawn from numpy default_rng(permute_seed) (Perm-TIMIT, Dai et al.
      2019; FACTS.md section 6). The permutation is recorded in the manifest.
    skip_bad: leave out files that cannot be decoded (each is listed in the manifest)
      instead of stopping at the first one.
    """
    settings = {
        "corpus": corpus.name, "sample_rate": SAMPLE_RATE, "samples_per_step": SAMPLES_PER_STEP,
        "chunk_steps": round(chunk_seconds * SAMPLE_RATE / SAMPLES_PER_STEP),
        "permute_seed": permute_seed, "split_rule": corpus.split_rule,
        "recordings": [[r.path, r.split, (corpus.root / r.path).stat().st_size] for r in corpus.recordings],
    }
    digest = _sha256_bytes(json.dumps(settings, sort_keys=True).encode())
    out = Path(out_root) / f"{corpus.name}-{digest[:12]}"
    if (out / "manifest.json").is_file():
        shutil.rmtree(out / "log", ignore_errors=True)      # left over from a cut cleanup
        return out
    permutation = None if permute_seed is None else np.random.default_rng(permute_seed).permutation(SAMPLES_PER_STEP)
    records = _decode_all(corpus, out, permutation, skip_bad)
    splits = {split: _describe(out, split, [r for r in records if r["split"] == split and r["steps"]],
                               settings["chunk_steps"]) for split in SPLITS}
    train = splits["train"]["recordings"]
    n = sum(rec["steps"] for rec in train) * SAMPLES_PER_STEP
    mean = sum(rec["sum"] for rec in train) / n
    std = float(np.sqrt(sum(rec["sum_sq"] for rec in train) / n - mean ** 2))
    if not std > 0:
        raise PreparationError(f"the training audio of {corpus.root} is constant (std 0); it cannot be normalized")
    for split in splits.values():
        for rec in split["recordings"]:
            del rec["sum"], rec["sum_sq"]
    manifest = {
        "format_version": FORMAT_VERSION, "corpus": corpus.name, "source": str(corpus.root.resolve()),
        "settings": settings, "settings_sha256": digest, "sample_rate": SAMPLE_RATE,
        "samples_per_step": SAMPLES_PER_STEP, "chunk_steps": settings["chunk_steps"],
        "sequence_unit": corpus.sequence_unit, "split_rule": corpus.split_rule,
        "normalization": {"mean": mean / INT16_SCALE, "std": std / INT16_SCALE,
                          "of": "training samples as floats in [-1, 1) (16-bit PCM / 32768)"},
        "permutation": None if permutation is None else {"seed": permute_seed, "order": permutation.tolist()},
        "splits": splits,
        "skipped": [{"path": r["path"], "error": r["error"]} for r in records if "error" in r],
        "too_short": [{"path": r["path"], "samples": r["samples"]} for r in records
                      if "error" not in r and not r["steps"]],
        "downmixed": [{"path": r["path"], "channels": r["source_channels"]} for r in records
                      if r.get("source_channels", 1) > 1],
        "resampled": [{"path": r["path"], "from_rate": r["source_rate"]} for r in records
                      if r.get("source_rate", SAMPLE_RATE) != SAMPLE_RATE],
        "clipped": [{"path": r["path"], "samples": r["clipped"]} for r in records if r.get("clipped")],
        "duplicates_left_out": corpus.duplicates,
    }
    for split in SPLITS:
        os.replace(out / f"{split}.i16.partial", out / f"{split}.i16")
    _write_atomic(out / "manifest.json", json.dumps(manifest, indent=1).encode())
    shutil.rmtree(out / "log")
    return out


def _decode_all(corpus: Corpus, out: Path, permutation: np.ndarray | None, skip_bad: bool) -> list[dict]:
    """Append every recording to its split's partial file, resuming after the last one
    logged by an earlier run; return the log (one dict per recording, in corpus order)."""
    log = out / "log"
    log.mkdir(parents=True, exist_ok=True)
    records = [json.loads((log / f"{i:06d}.json").read_text()) for i in range(len(corpus.recordings))
               if (log / f"{i:06d}.json").is_file()]
    files, steps = {}, {}
    for split in SPLITS:
        steps[split] = sum(r["steps"] for r in records if r["split"] == split)
        path, size = out / f"{split}.i16.partial", 2 * SAMPLES_PER_STEP * steps[split]
        if not path.exists() and (out / f"{split}.i16").exists():    # cut just before the manifest
            os.replace(out / f"{split}.i16", path)
        files[split] = open(path, "r+b" if path.exists() else "w+b")
        if os.fstat(files[split].fileno()).st_size < size:
            raise PreparationError(f"{path} is shorter than its log in {log} says; delete {out} and prepare again")
        files[split].truncate(size)                 # drop bytes that no log entry owns
        files[split].seek(0, os.SEEK_END)
    try:
        todo = corpus.recordings[len(records):]
        for i, rec in enumerate(tqdm(todo, desc=f"preparing {corpus.name}", unit="file"), len(records)):
            info, pcm = _decode(rec, corpus.root, permutation, skip_bad)
            if info["steps"]:
                f = files[rec.split]
                f.write(pcm.tobytes())
                f.flush()
                os.fsync(f.fileno())
                info["first_step"] = steps[rec.split]
                steps[rec.split] += info["steps"]
            _write_atomic(log / f"{i:06d}.json", json.dumps(info).encode())
            records.append(info)
    finally:
        for f in files.values():
            f.close()
    return records


def _decode(rec: Recording, root: Path, permutation: np.ndarray | None, skip_bad: bool):
    """One recording as int16 whole frames (permuted within frames if asked), and its
    log entry: checksum, rates, sums for the normalization, or the decoding error."""
    path = root / rec.path
    info = {"key": rec.key, "path": rec.path, "split": rec.split, "sha256": sha256_of(path),
            "bytes": path.stat().st_size, "steps": 0}
    try:
        audio = read_audio(path)
    except AudioError as e:
        if not skip_bad:
            raise
        return {**info, "error": str(e)}, None
    steps = len(audio.samples) // SAMPLES_PER_STEP
    pcm, clipped = to_int16(audio.samples[:steps * SAMPLES_PER_STEP])
    if permutation is not None:
        pcm = pcm.reshape(steps, SAMPLES_PER_STEP)[:, permutation].ravel()
    wide = pcm.astype(np.float64)
    info.update(samples=len(audio.samples), steps=steps, duration=round(audio.duration, 4),
                source_rate=audio.source_rate, source_channels=audio.source_channels,
                clipped=clipped, sum=float(wide.sum()), sum_sq=float(wide @ wide))
    return info, pcm


def _describe(out: Path, split: str, records: list[dict], chunk_steps: int) -> dict:
    """The manifest entry of a split whose partial file is complete."""
    if not records:
        raise PreparationError(f"the {split} split is empty: every one of its files was skipped or "
                               f"shorter than one frame (see {out / 'log'})")
    steps = sum(r["steps"] for r in records)
    if split == "train" and steps < chunk_steps:
        raise PreparationError(f"the training split holds {steps * SAMPLES_PER_STEP / SAMPLE_RATE:.2f} s "
                               f"of audio, less than one {chunk_steps}-step chunk; add recordings")
    return {"file": f"{split}.i16", "dtype": "int16", "steps": steps, "samples": steps * SAMPLES_PER_STEP,
            "seconds": steps * SAMPLES_PER_STEP / SAMPLE_RATE, "chunks": steps // chunk_steps,
            "sha256": sha256_of(out / f"{split}.i16.partial"), "recordings": records}


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
