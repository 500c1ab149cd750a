"""The record store: one committed record per run, and the id that names it.

A run's record is ``results/<domain>/<run>/run.json`` beside its ``history.jsonl``. It
holds the config, seed, data fingerprint, code version, hardware, wall time, the command
that reproduces it and the test metrics (ELBO by both estimators and the
importance-weighted bound). The book reads only these files; :mod:`srnn.records.tables`
makes the comparisons.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from ..errors import UserError
from ..files import FileFormatError, read_json, read_jsonl, write_atomic, write_json

FORMAT = 1


class RecordError(UserError, FileNotFoundError):
    """A result record that is missing or cannot be written."""



def write_run(folder: str | Path, record: dict, history: list[dict]) -> Path:
    """Write ``history.jsonl`` and then ``run.json``, each atomically; a record with a NaN or
    an infinity is refused (it would not be JSON), naming what holds one."""
    folder = Path(folder)
    bad = [key for key, value in _leaves(record) if isinstance(value, float) and not math.isfinite(value)]
    if bad:
        raise RecordError(f"the record of {folder} has non-finite values at {', '.join(bad[:5])}; it is not "
                          f"written: the run's numbers are not usable (see its history)")
    write_atomic(folder / "history.jsonl", "".join(json.dumps(r) + "\n" for r in history))
    return write_json(folder / "run.json", {"format": FORMAT, **record}, indent=2)


def _leaves(value, path: str = ""):
    """(dotted path, value) of every leaf of nested dicts and lists."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{path}[{i}]")
    else:
        yield path, value


def load_run(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise RecordError(f"no results file {path}: run the experiment (see its 'command') or "
                          f"check the results folder")
    fix = "restore it with git (git checkout -- FILE) or rerun the run's command"
    record = read_json(path, fix)
    found = record.get("format") if isinstance(record, dict) else type(record).__name__
    if found != FORMAT:
        raise FileFormatError(f"{path} has results format {found!r}, this srnn reads format {FORMAT}: rerun the "
                              f"experiment with this version")
    history = path.with_name("history.jsonl")
    record["history"] = read_jsonl(history, fix) if history.exists() else []
    record["path"] = str(path.parent)
    return record


def load_runs(root: str | Path = "results", profile: str | None = None) -> list[dict]:
    """Every run under ``root`` (optionally only one profile, e.g. 'paper'), sorted by id."""
    runs = [load_run(p) for p in sorted(Path(root).glob("**/run.json"))]
    return [r for r in runs if profile is None or r.get("profile") == profile]


def run_name(domain: str, dataset: str, form: str = "npz", variant: str = "smooth+Resq", name: str = "") -> str:
    """The id of a run, and the folder of its record under ``results/<domain>/``:
    ``<data set>[-<form>]-<variant>[-<name>]``, e.g. 'jsb-npz-smooth-resq' or 'timit-filt'. The
    form is music's alone (speech has one); the variant is SRNN's (e.g. smooth+Resq becomes
    smooth-resq) or a baseline's (VRNN-I becomes vrnn-i). Every id is made here: by
    ``srnn.experiment`` for the run it makes, and by the tables and pages for the run they look for."""
    parts = [dataset, form if domain == "music" else "", variant.replace("+", "-").lower(), name]
    return "-".join(filter(None, parts))

