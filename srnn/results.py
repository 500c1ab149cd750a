"""Committed results with provenance, the paper's numbers, and the tables that compare them.

A run's record is ``results/<domain>/<run>/run.json`` beside its ``history.jsonl``. It
holds the config, seed, data fingerprint, code version, hardware, wall time, the command
that reproduces it and the test metrics (ELBO by both estimators and the
importance-weighted bound). The book reads only these files; :mod:`srnn.tables` makes
the comparisons.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import torch

from .errors import ArgumentParser, UserError, command_line
from .files import FileFormatError, read_json, read_jsonl, write_atomic, write_json

FORMAT = 1

# The paper's Table 2 (music, log-likelihood bound per time step) and Table 1 (speech,
# average log-likelihood bound: per 0.5 s sequence for Blizzard, per utterance for TIMIT).
PAPER_MUSIC = {"piano": -8.20, "nottingham": -2.94, "muse": -6.28, "jsb": -4.74}
PAPER_SPEECH = {
    "smooth+Resq": {"blizzard": 11991, "timit": 60550},
    "smooth": {"blizzard": 10991, "timit": 59269},
    "filt+Resq": {"blizzard": 10572, "timit": 52126},
    "filt": {"blizzard": 10846, "timit": 50524},
}
# The baselines the paper's Table 1 quotes from Chung et al. (2015), beside the variant of
# ours that is the same model.
PAPER_SPEECH_BASELINES = {
    "VRNN-Gauss": ("VRNN", {"blizzard": 9223, "timit": 28805}),
    "VRNN-I-Gauss": ("VRNN-I", {"blizzard": 8933, "timit": 28340}),
    "VRNN-GMM": ("VRNN-GMM", {"blizzard": 9107, "timit": 28982}),
    "RNN-GMM": ("RNN-GMM", {"blizzard": 7413, "timit": 26643}),
    "RNN-Gauss": ("RNN", {}),
}
MUSIC_NAMES = {"jsb": "JSB Chorales", "nottingham": "Nottingham", "muse": "MuseData",
               "piano": "Piano-midi.de"}


class RecordError(UserError, FileNotFoundError):
    """A result record that is missing or cannot be written."""


class ProvenanceError(UserError, RuntimeError):
    """The code that would make a result cannot be named (a dirty tree, no git)."""


def _git(root: Path, *args: str) -> str | None:
    """The output of a git command in ``root``, or None where git or the repository is missing."""
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.decode(errors="replace").strip() if done.returncode == 0 else None


def code_version(allow_dirty: bool = False, root: str | Path | None = None) -> dict:
    """The full commit of the checkout, read from git, and whether its tracked files differ
    from it. A dirty tree (or no git history) is refused with ProvenanceError unless
    ``allow_dirty``; then the record says so, with the sha256 of ``git diff HEAD`` (or,
    without git, the commit the environment variable SRNN_COMMIT states, marked unchecked)."""
    root = Path(root) if root else Path(__file__).resolve().parent.parent
    commit = _git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if not commit or len(commit) != 40:
        if not allow_dirty:
            raise ProvenanceError(f"{root} is not a git checkout, so a record could not name its code: run "
                                  f"from a clone of the repository, or allow it (--allow-dirty) to record "
                                  f"the code as unknown")
        stated = os.environ.get("SRNN_COMMIT", "")
        return {"commit": stated or "unknown", "dirty": None,
                "note": "no git history: stated by SRNN_COMMIT, not checked" if stated else "no git history"}
    changed = _git(root, "status", "--porcelain", "--untracked-files=no")
    if changed and not allow_dirty:
        files = ", ".join(line.split(maxsplit=1)[-1] for line in changed.splitlines()[:5])
        raise ProvenanceError(f"the working tree has uncommitted changes ({files}); commit them so that the "
                              f"record names the code that made it, or allow it (--allow-dirty) to record "
                              f"the run as dirty with a hash of the diff")
    version = {"commit": commit, "dirty": bool(changed)}
    if changed:
        diff = subprocess.run(["git", "diff", "HEAD", "--binary"], cwd=root, capture_output=True).stdout
        version["diff_sha256"] = hashlib.sha256(diff).hexdigest()
    return version


def hardware(device: torch.device | str) -> dict:
    """The machine and what computed on it: device, CPU model, the engine of the fp32 matrix
    products, torch, CUDA and cuDNN, Python."""
    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    return {"device": f"{device.type}: {name}", "cpu": cpu_model(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "products": product_engine(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available()
            else None, "python": platform.python_version()}


def cpu_model() -> str:
    """The CPU's model name as Linux reports it (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def product_engine() -> dict:
    """What runs the CPU's fp32 matrix products: torch's BLAS, torch's fp32 matmul precision
    (anything but "highest" lets torch send them to oneDNN, which computes them in bf16 on
    CPUs with the units for it) and any preloaded library (such as one that lets MKL take its
    Intel code path on an AMD CPU: the book's Performance page)."""
    config = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=(\w+)", config)
    blas = blas.group(1) if blas else "unknown"
    mkl = re.search(r"Math Kernel Library Version ([\d.]+)", config)
    if blas == "mkl" and mkl:
        blas = f"mkl {mkl.group(1)}"
    return {"blas": blas, "fp32_matmul_precision": torch.get_float32_matmul_precision(),
            "preload": os.environ.get("LD_PRELOAD") or None}


def provenance(device: torch.device | str, allow_dirty: bool = False) -> dict:
    """Code version and hardware of the process that produces a result."""
    return {"code": code_version(allow_dirty), "hardware": hardware(device)}


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


def run_name(dataset: str, form: str, variant: str, suffix: str = "") -> str:
    """The id ``srnn.experiment`` gives a run, e.g. 'jsb-npz-smooth-resq'."""
    return "-".join(filter(None, [dataset, form, variant.replace("+", "-").lower(), suffix]))


README = Path(__file__).resolve().parent.parent / "results" / "README.md"
STAND = ("<!-- where we stand: python -m srnn.results --readme -->", "<!-- end of where we stand -->")


@command_line
def main(argv: list[str], prog: str = "python -m srnn.results") -> int:
    """Print the comparison tables from the committed records: python -m srnn.results"""
    from .report import where_we_stand
    from .tables import print_tables

    parser = ArgumentParser(prog=prog, description="The paper's tables next to the "
                            "committed records of results/.")
    parser.add_argument("--markdown", action="store_true", help="print the 'where we stand' summary in markdown")
    parser.add_argument("--readme", action="store_true", help="write that summary into results/README.md")
    args = parser.parse_args(argv)
    runs = load_runs(README.parent)
    if args.readme:
        write_atomic(README, readme_with(README.read_text(), where_we_stand(runs)))
    elif args.markdown:
        print(where_we_stand(runs))
    else:
        print_tables(runs)
    return 0


def readme_with(text: str, summary: str) -> str:
    """``text`` with the part between the STAND markers replaced by ``summary``."""
    start, end = text.index(STAND[0]) + len(STAND[0]), text.index(STAND[1])
    return text[:start] + "\n" + summary + "\n" + text[end:]


if __name__ == "__main__":
    sys.exit(main())
