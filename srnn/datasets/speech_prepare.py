"""Preparation of a speech corpus, written once to disk (supplementary section 1.1).

Every recording is decoded to 16 kHz mono, cut to whole 200-sample frames (the last
partial frame, under 12.5 ms, is dropped) and stored as 16-bit PCM, like the corpora
themselves. Layout of ``<out_root>/<corpus>-<identity hash>/``:

- ``train.i16``, ``valid.i16``, ``test.i16``: each split's recordings one after the
  other, flat int16 (read as numpy memmaps; training never loads a split in memory);
- ``manifest.json``, written last: recordings with their sha256, durations, and where
  they lie in their split's file (``first_step`` and ``steps``, in 200-sample frames),
  the mean and std of the TRAINING samples (applied to every split when loading), the
  settings, and every file that was left out (unreadable or damaged, empty or too short, or
  silent), downmixed, resampled or clipped,
  or whose stereo channels cancelled out in the mono mix. All but the downmixed are also
  told while preparing, one warning line per kind (``NOTICES``);
- ``sha256-cache.json``: the split files' sha256, with which
  :func:`srnn.datasets.speech.load_prepared` checks them against the manifest at every run start.

Identity. The hash in the folder's name covers the settings and, for every recording, its
canonical key (see :mod:`srnn.datasets.speech_corpora`), its split and the sha256 of its bytes.
The same recordings prepared the same way give the same folder wherever the corpus lies
and whichever folder above it is given; a recording changed in any byte gives another
folder. Hashing a large corpus takes minutes, so ``<out_root>/sha256-cache.json`` keeps
every file's sha256 (sources here, split files in the prepared folder) with the size,
mtime and ctime it had, and a file is read again when any of the three changed. Setting
the mtime back does not hide an edit: the kernel updates ctime on every write and on
``os.utime`` itself, and only the clock can set it. Two blind spots remain: a file edited
again within the tick of the file clock (a few milliseconds) in which it was changed and
hashed, and, where a file system keeps no ctime, an edit that keeps size and mtime.
Deleting the cache rehashes everything.

Concurrency and failures. Preparations of one folder take turns on the lock file
``<out_root>/.<folder>.lock`` (``fcntl.flock``): a second one says it waits, then reuses
the finished folder. While preparing, each recording is appended to
``<split>.i16.partial`` and then logged in ``log/<index>.json``; after an interruption
(Ctrl-C, a kill, a full disk) the same call resumes: the partial files are cut back to
what the log holds and only the recordings not logged yet are decoded. A preparation
stopped by a user error (an unreadable file without ``skip_bad``, an empty split, a
damaged log) removes its folder: the same input would stop it again, and fixed input
gives another folder, so nothing half-done is left to be reused; a rerun with
``skip_bad`` starts afresh. The disk never holds more than one copy of the prepared
audio (about 115 MB per hour).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import UserError
from ..files import FileFormatError, locked, named, read_json, write_json
from .audio import CANCELLED_BELOW, INT16_SCALE, RESAMPLER, SAMPLE_RATE, AudioError, read_audio, to_int16
from .registry import sha256_of
from .speech_corpora import Corpus, Recording

FORMAT_VERSION = 1
SAMPLES_PER_STEP = 200       # x_t is a frame of 200 samples (12.5 ms)
SPLITS = ("train", "valid", "test")
SHA256_CACHE = "sha256-cache.json"
NOTICES = {                  # manifest lists told as warnings: what happened to their files
    "skipped": "unreadable or damaged file(s) left out (--skip-bad)",
    "too_short": "file(s) empty or shorter than one 200-sample frame left out",
    "silent": "silent file(s) (every sample 0 at 16 bits) left out",
    "cancelled": (f"stereo file(s) nearly silent in the data, their channels cancelling out in the "
                  f"mono mix (mono RMS under {CANCELLED_BELOW} x the channels' RMS)"),
    "resampled": f"file(s) resampled to {SAMPLE_RATE} Hz",
    "clipped": "file(s) with samples clipped to 16 bits",
}


LEFT_OUT = ("skipped", "too_short", "silent")     # the kinds of files that are not in the data


class PreparationError(UserError, RuntimeError):
    """Preparation could not produce a usable data set; the message says why."""


def prepare(corpus: Corpus, out_root: str | Path, chunk_seconds: float = 2.0,
            permute_seed: int | None = None, skip_bad: bool = False) -> Path:
    """Prepare ``corpus`` under ``out_root`` (or reuse an earlier preparation of the same
    recordings with the same settings) and return its folder.

    permute_seed: if given, permute the 200 samples within every frame by one fixed
      permutation drawn from numpy default_rng(permute_seed) (Perm-TIMIT, Dai et al.
      2019; FACTS.md section 6). The permutation is recorded in the manifest.
    skip_bad: leave out files that cannot be decoded (each is listed in the manifest)
      instead of stopping at the first one. It is not part of the folder's identity: a
      folder prepared with it is reused by a call without it.
    """
    out_root = Path(out_root)
    sources = sha256_cached([corpus.root / r.path for r in corpus.recordings], out_root / SHA256_CACHE,
                            desc=f"hashing {corpus.name}")
    settings = {
        "corpus": corpus.name, "sample_rate": SAMPLE_RATE, "resampler": RESAMPLER,
        "samples_per_step": SAMPLES_PER_STEP,
        "chunk_steps": round(chunk_seconds * SAMPLE_RATE / SAMPLES_PER_STEP),
        "permute_seed": permute_seed, "split_rule": corpus.split_rule,
        "recordings": [[r.key, r.split, sha256] for r, sha256 in zip(corpus.recordings, sources)],
    }
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    out = out_root / f"{corpus.name}-{digest[:12]}"
    with locked(out_root / f".{out.name}.lock", "a preparation of the same data", wait=True):
        if not (out / "manifest.json").is_file():
            try:
                _prepare_in(out, corpus, settings, digest, sources, permute_seed, skip_bad)
            except UserError:
                shutil.rmtree(out, ignore_errors=True)       # the same input would stop here again
                raise
        shutil.rmtree(out / "log", ignore_errors=True)      # done with it (or left by a cut cleanup)
    return out


def _prepare_in(out: Path, corpus: Corpus, settings: dict, digest: str, sources: list[str],
                permute_seed: int | None, skip_bad: bool) -> None:
    """Decode the corpus into ``out`` (resuming), then write its manifest."""
    permutation = None if permute_seed is None else np.random.default_rng(permute_seed).permutation(SAMPLES_PER_STEP)
    records = _decode_all(corpus, sources, out, permutation, skip_bad)
    for split in SPLITS:
        os.replace(out / f"{split}.i16.partial", out / f"{split}.i16")
    hashes = sha256_cached([out / f"{split}.i16" for split in SPLITS], out / SHA256_CACHE)
    splits = {split: _describe(corpus, split, [r for r in records if r["split"] == split],
                               settings["chunk_steps"], sha256) for split, sha256 in zip(SPLITS, hashes)}
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
                      if "error" not in r and not r["steps"] and not r.get("silent")],
        "silent": [{"path": r["path"], "samples": r["samples"]} for r in records if r.get("silent")],
        "downmixed": [{"path": r["path"], "channels": r["source_channels"]} for r in records
                      if r.get("source_channels", 1) > 1],
        "cancelled": [{"path": r["path"], "mix_rms_ratio": r["mix_rms_ratio"]} for r in records
                      if r.get("mix_rms_ratio", 1) < CANCELLED_BELOW],
        "resampled": [{"path": r["path"], "from_rate": r["source_rate"]} for r in records
                      if r.get("source_rate", SAMPLE_RATE) != SAMPLE_RATE],
        "clipped": [{"path": r["path"], "samples": r["clipped"]} for r in records if r.get("clipped")],
        "duplicates_left_out": corpus.duplicates,
    }
    write_json(out / "manifest.json", manifest, indent=1)
    for kind, what in NOTICES.items():
        paths = [entry["path"] for entry in manifest[kind]]
        if paths:
            shown = len(paths) if kind in LEFT_OUT else 3          # every file left out is named
            more = ", ..." if len(paths) > shown else ""
            warnings.warn(f"{corpus.name}: {len(paths)} {what}: {', '.join(paths[:shown])}{more} (all under "
                          f"'{kind}' in {out / 'manifest.json'})", stacklevel=2)


def _decode_all(corpus: Corpus, sources: list[str], out: Path, permutation: np.ndarray | None,
                skip_bad: bool) -> list[dict]:
    """Append every recording to its split's partial file, resuming after the last one
    logged by an earlier run; return the log (one dict per recording, in corpus order)."""
    log = out / "log"
    log.mkdir(parents=True, exist_ok=True)
    records = [read_json(log / f"{i:06d}.json", fix="its unfinished preparation is removed: prepare again")
               for i in range(len(corpus.recordings)) if (log / f"{i:06d}.json").is_file()]
    files, steps = {}, {}
    for split in SPLITS:
        steps[split] = sum(r["steps"] for r in records if r["split"] == split)
        path, size = out / f"{split}.i16.partial", 2 * SAMPLES_PER_STEP * steps[split]
        if not path.exists() and (out / f"{split}.i16").exists():    # cut just before the manifest
            os.replace(out / f"{split}.i16", path)
        files[split] = open(path, "r+b" if path.exists() else "w+b")    # noqa: SIM115 - closed in the finally below
        if os.fstat(files[split].fileno()).st_size < size:
            raise PreparationError(f"{path} is shorter than its log in {log} says, so the unfinished "
                                   f"preparation {out} is damaged; it is removed: prepare again")
        files[split].truncate(size)                 # drop bytes that no log entry owns
        files[split].seek(0, os.SEEK_END)
    try:
        todo = corpus.recordings[len(records):]
        for i, rec in enumerate(tqdm(todo, desc=f"preparing {corpus.name}", unit="file"), len(records)):
            info, pcm = _decode(rec, corpus.root, sources[i], permutation, skip_bad)
            if info["steps"]:
                f = files[rec.split]
                try:
                    f.write(pcm.tobytes())
                    f.flush()
                    os.fsync(f.fileno())
                except OSError as err:                  # e.g. a full disk: say which file
                    raise named(err, f.name) from None
                info["first_step"] = steps[rec.split]
                steps[rec.split] += info["steps"]
            write_json(log / f"{i:06d}.json", info)
            records.append(info)
    finally:
        for f in files.values():
            f.close()
    return records


def _decode(rec: Recording, root: Path, sha256: str, permutation: np.ndarray | None, skip_bad: bool):
    """One recording as int16 whole frames (permuted within frames if asked), and its
    log entry: checksum, rates, sums for the normalization, or the decoding error."""
    path = root / rec.path
    info = {"key": rec.key, "path": rec.path, "split": rec.split, "sha256": sha256,
            "bytes": path.stat().st_size, "steps": 0}
    try:
        audio = read_audio(path)
    except AudioError as e:
        if not skip_bad:
            raise
        return {**info, "error": str(e)}, None
    steps = len(audio.samples) // SAMPLES_PER_STEP
    pcm, clipped = to_int16(audio.samples[:steps * SAMPLES_PER_STEP])
    if steps and not pcm.any():             # digital silence: nothing to learn, and no std to normalize by
        return {**info, "samples": len(audio.samples), "silent": True}, None
    if permutation is not None:
        pcm = pcm.reshape(steps, SAMPLES_PER_STEP)[:, permutation].ravel()
    wide = pcm.astype(np.float64)
    info.update(samples=len(audio.samples), steps=steps, duration=round(audio.duration, 4),
                source_rate=audio.source_rate, source_channels=audio.source_channels,
                mix_rms_ratio=round(audio.mix_rms_ratio, 4), clipped=clipped,
                sum=float(wide.sum()), sum_sq=float(wide @ wide))
    return info, pcm


def _describe(corpus: Corpus, split: str, records: list[dict], chunk_steps: int, sha256: str) -> dict:
    """The manifest entry of a split whose file is complete, from the log entries of its files."""
    left_out = [r["path"] for r in records if not r["steps"]]
    records = [r for r in records if r["steps"]]
    if not records:
        listed = ", ".join(left_out[:5]) + (", ..." if len(left_out) > 5 else "")
        raise PreparationError(f"the {split} split of {corpus.root} is empty: its {len(left_out)} file(s) were "
                               f"all left out as unreadable, damaged, empty, too short or silent ({listed}); "
                               f"replace or remove them, or add recordings")
    steps = sum(r["steps"] for r in records)
    if split == "train" and steps < chunk_steps:
        raise PreparationError(f"the training split holds {steps * SAMPLES_PER_STEP / SAMPLE_RATE:.2f} s "
                               f"of audio, less than one {chunk_steps}-step chunk; add recordings")
    return {"file": f"{split}.i16", "dtype": "int16", "steps": steps, "samples": steps * SAMPLES_PER_STEP,
            "seconds": steps * SAMPLES_PER_STEP / SAMPLE_RATE, "chunks": steps // chunk_steps,
            "sha256": sha256, "recordings": records}


def sha256_cached(paths: list[Path], cache: Path, desc: str | None = None) -> list[str]:
    """The sha256 of each file. The JSON file ``cache`` maps resolved paths to
    [size, mtime_ns, ctime_ns, sha256]; a file whose three stamps still match is not read
    again. ``desc`` names a progress bar over the files that are read."""
    keys = [str(Path(p).resolve()) for p in paths]
    entries, todo = _read_cache(cache), []
    for key in keys:
        st = os.stat(key)
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        if entries.get(key, [])[:3] != stamp:
            todo.append((key, stamp))
    for key, stamp in tqdm(todo, desc=desc, unit="file", disable=desc is None or not todo):
        entries[key] = [*stamp, sha256_of(Path(key))]
    if todo:
        with contextlib.suppress(OSError):    # merged with what others wrote meanwhile; a read-only
            write_json(cache, {**_read_cache(cache), **{key: entries[key] for key, _ in todo}})    # folder: no cache
    return [entries[key][3] for key in keys]


def _read_cache(cache: Path) -> dict:
    try:
        return read_json(cache)
    except (FileNotFoundError, FileFormatError):     # only a cache: rebuilt when missing or damaged
        return {}
