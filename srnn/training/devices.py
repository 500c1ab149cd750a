"""Where a run computes: the device a config names, checked against this machine, and what
``compile=true`` needs there. Refused here, before a run starts, rather than hours into it."""
from __future__ import annotations

import importlib.util
import os
import shutil

import torch

from ..config import Config
from ..errors import UserError


class DeviceError(UserError, ValueError):
    """The config names a device this machine does not have."""


def resolve_device(name: str) -> torch.device:
    """'auto' picks the GPU when there is one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"device {name!r} is not a torch device name; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise DeviceError(f"device {name!r} is not available on this machine ({torch.cuda.device_count()} CUDA "
                          f"device(s)); set device=auto or device=cpu")
    if device.type not in ("cpu", "cuda"):
        raise DeviceError(f"device {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    return device


def check_compiler(cfg: Config, device: torch.device) -> None:
    """``compile=true`` needs what torch.compile builds its kernels with: Triton on a GPU, a
    C++ compiler on a CPU."""
    if not cfg.compile:
        return
    needs = "Triton (pip install triton)" if device.type == "cuda" else "a C++ compiler (g++ or clang++, or $CXX)"
    found = importlib.util.find_spec("triton") if device.type == "cuda" else \
        next(filter(None, map(shutil.which, (os.environ.get("CXX", ""), "g++", "clang++", "c++"))), None)
    if not found:
        raise DeviceError(f"compile=true needs {needs} on this machine to build its kernels for {device.type}, "
                          f"and there is none: install it, or set compile=false")
