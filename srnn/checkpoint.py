"""Checkpoints: written atomically, read back with a clear error when missing or corrupt.

A checkpoint holds everything a run needs to continue with the same numbers: the full
config, model and optimizer state, the step, the position in the epoch, the carried TBPTT
state, the RNG states and the history so far.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .errors import UserError
from .config import Config
from .model import SRNN

FORMAT = 1
REQUIRED = ("format", "config", "model")


class CheckpointError(UserError, RuntimeError):
    pass


def save_checkpoint(path: str | Path, payload: dict) -> None:
    """Write to a temporary file beside ``path`` and rename it: a kill never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, **payload}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: train a model into that run folder first, "
                                f"or give the path of an existing last.pt / best.pt")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(err).__name__}: {err}); it is "
                              f"corrupt or not an srnn checkpoint: delete it and resume from the other "
                              f"checkpoint of the run (last.pt / best.pt) or retrain") from None
    missing = [k for k in REQUIRED if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}: it is not an srnn checkpoint")
    if ckpt["format"] != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {ckpt['format']}, this srnn reads format "
                              f"{FORMAT}: use the srnn version that wrote it")
    return ckpt


def load_model(path: str | Path, device: str | torch.device = "cpu") -> SRNN:
    """The model stored in a checkpoint, in eval mode."""
    ckpt = load_checkpoint(path)
    model = SRNN(Config.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval()
