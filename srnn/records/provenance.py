"""What made a result: the code version read from git and the hardware that computed it.

Every record carries both (see :func:`provenance`), so that a number can be followed back
to the commit and the machine; a tree with uncommitted changes is refused for a result
unless the caller allows it, and then the record says so, with a hash of the diff.
"""
from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
from pathlib import Path

import torch

from ..errors import UserError


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
    root = Path(root) if root else Path(__file__).resolve().parents[2]
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

