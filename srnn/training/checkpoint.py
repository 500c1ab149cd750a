"""Checkpoints: written atomically, read back with a clear error when missing or corrupt.

A checkpoint holds everything a run needs to continue with the same numbers: the full
config, model and optimizer state, the step, the position in the epoch, the carried TBPTT
state, the RNG states and the history so far. It also names the data it was trained on
(the data set's fingerprint), and :func:`check_identity` refuses to resume or test it with
another config or other data, naming what differs.
"""
from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import torch

from ..config import Config
from ..errors import UserError
from ..files import write_atomic
from ..models.baselines import build_model

FORMAT = 1
REQUIRED = ("format", "config", "model")
# Config fields a run may change when it is resumed: how long it trains, and where.
RESUMABLE = ("epochs", "patience", "max_epochs", "device")


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that is missing, damaged, or not of this run."""


def save_checkpoint(path: str | Path, payload: dict) -> None:
    """Write to a temporary file beside ``path`` and rename it: a kill never leaves half a file."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **payload}, buffer)
    write_atomic(path, buffer.getvalue())


GIVE_ANOTHER = "give the last.pt or best.pt of a run that srnn trained (runs/<id>/)"


def load_checkpoint(path: str | Path, fix: str = GIVE_ANOTHER) -> dict:
    """The checkpoint in ``path``, read safely (``weights_only``: tensors and plain values,
    never code). A file that is not one raises a CheckpointError naming it and ``fix``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train a model into that run folder first, "
                              f"or give the path of an existing last.pt / best.pt")
    try:
        with warnings.catch_warnings():           # torch's notes on a foreign pickle: the error says it all
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"checkpoint {path} cannot be read ({_why(err)}): it is damaged, cut short or "
                              f"not an srnn checkpoint; {fix}") from None
    missing = [k for k in REQUIRED if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}: it is not an srnn checkpoint; {fix}")
    if ckpt["format"] != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {ckpt['format']}, this srnn reads format "
                              f"{FORMAT}: use the srnn version that wrote it")
    return ckpt


def _why(err: Exception) -> str:
    """What torch.load found, without its advice to load the file unsafely (an srnn checkpoint
    never needs that, and a file of unknown origin must not get it)."""
    text = str(err)
    if "Weights only load failed" in text:
        found = text.split("WeightsUnpickler error:", 1)[1].strip().split("\n")[0] if "WeightsUnpickler error:" \
            in text else ""
        return "safe loading (tensors and plain values only) refuses it" + (f": {found.rstrip('.')}" if found else "")
    return f"{type(err).__name__}: {' '.join(text.split())[:160]}"


def identity(config: Config | dict, data: dict | None) -> dict:
    """What makes a run this run: its config (with the fields a stored config lacks filled in
    as they ran) and its data's fingerprint, as they read back from JSON."""
    config = config if isinstance(config, Config) else Config.from_dict(config)
    return json.loads(json.dumps({"config": config.to_dict(), "data": data}))


def differences(there: dict, here: dict, prefix: str = "") -> list[str]:
    """"field: A there, B here" for every leaf that differs between two nested dicts."""
    out = []
    for key in sorted(set(there) | set(here), key=str):
        a, b = there.get(key, "(none)"), here.get(key, "(none)")
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {_short(a)} there, {_short(b)} here")
    return out


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_identity(ckpt: dict, config: Config, data: dict, path: str | Path, what: str) -> None:
    """Refuse ``ckpt`` (read from ``path``) unless it was made with ``config`` (up to the
    RESUMABLE fields) on ``data``; ``what`` says what was asked, for the message."""
    there = identity(ckpt["config"], ckpt.get("data", "(not recorded)"))
    here = identity(config, data)
    for found in (there, here):
        found["config"].update({k: None for k in RESUMABLE})
    if there == here:
        return
    if "data" not in ckpt:
        raise CheckpointError(f"{path} was written before checkpoints named their data, so it cannot be "
                              f"checked to be this run: {what} with the srnn commit that started it (see "
                              f"starts.json beside it), or delete {Path(path).parent} to start again")
    listed = "; ".join(differences(there, here))
    raise CheckpointError(f"{path} belongs to another run ({listed}), so it cannot be used to {what}: to "
                          f"start a separate run, give it a name (--name NAME) or another --runs folder; to "
                          f"continue that run, repeat its own command (its config is in "
                          f"{Path(path).parent / 'config.json'})")


def load_model(path: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The model stored in a checkpoint (SRNN or a baseline, as its config says), in eval mode."""
    return model_from(load_checkpoint(path), device)


def model_from(ckpt: dict, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The model of a loaded checkpoint, of the class its config names, in eval mode."""
    model = build_model(Config.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval()
