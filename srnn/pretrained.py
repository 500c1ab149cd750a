"""Trained models to load without training: for each music set, the SRNN and the VRNN that
the search protocol of :mod:`srnn.records.grid` chose on validation (their paper-seed runs),
and the RNN with the paper's settings (well behind both, it is not searched).

    from srnn.pretrained import load_pretrained
    model = load_pretrained("jsb")                 # SRNN on JSB Chorales; "jsb-vrnn": VRNN; "jsb-rnn": RNN
    rolls = model.generate(64, batch_size=4)       # (4, 64, 88) piano rolls

Every model comes in two copies, listed with their sha256 in ``data/pretrained/models.json``
and described by a model card beside it (``data/pretrained/<name>.md``):

- the shipped copy, in the package: every weight matrix as int8 with one float16 scale per
  row (its largest magnitude over 127), the vectors (biases) as float16, a quarter of the
  float32 size. Its test bound lies a little below the record's; the card says how much.
- the exact copy, in the release archive (``python -m srnn.release archive``): the float32
  weights of the run's ``best.pt``, which reproduce the record's test bound exactly. Copy it
  into the cache (``$SRNN_CACHE``, default ``~/.cache/srnn``) and it is found, verified and
  preferred by the same name.

``python -m srnn.release export`` writes both copies, the card and the list entry from a
run of the protocol's choice.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import Config
from .datasets.registry import DataError, DataFile, cache_dir, check, data_dir, fetch
from .errors import UserError
from .models.baselines import build_model

FORMAT = "srnn-pretrained-2"
MODELS_FILE = "pretrained/models.json"        # under data/


class PretrainedError(UserError, ValueError):
    """An unknown or unusable pretrained model."""


@dataclass(frozen=True)
class Released:
    """One released model: its set and model kind, the committed run it comes from, its
    two copies, and how its record's test bound was computed (seed and sample paths)."""

    name: str
    dataset: str
    variant: str
    run: str
    shipped: DataFile
    exact: DataFile
    seed: int
    paths: int
    record_test: float         # the record's test ELBO per step (mean over pieces), the exact copy's too
    shipped_test: float        # the shipped copy's, by the same computation

    @classmethod
    def from_entry(cls, name: str, entry: dict) -> Released:
        shipped, exact = entry["shipped"], entry["exact"]
        return cls(name, entry["dataset"], entry["variant"], entry["run"],
                   DataFile(shipped["file"], shipped["sha256"], shipped["size"], urls=(),
                            shipped=f"pretrained/{shipped['file']}"),
                   DataFile(exact["file"], exact["sha256"], exact["size"], urls=tuple(exact.get("urls", ()))),
                   entry["seed"], entry["paths"], entry["record_test"], entry["shipped_test"])


def release_name(dataset: str, variant: str) -> str:
    """The name a released model loads by: the set for SRNN, '<set>-vrnn' for VRNN, '<set>-rnn' for the RNN."""
    return dataset if variant == "smooth+Resq" else f"{dataset}-{variant.lower()}"


def released(folder: Path | None = None) -> dict[str, Released]:
    """The released models by name, as ``data/pretrained/models.json`` lists them."""
    path = (folder or data_dir()) / MODELS_FILE
    entries = json.loads(path.read_text()) if path.is_file() else {}
    return {name: Released.from_entry(name, entry) for name, entry in entries.items()}


def exact_available(model: Released, cache: str | Path | None = None) -> bool:
    """Whether the exact float32 copy is in the cache and verified."""
    path = cache_dir(cache) / model.exact.name
    return path.is_file() and check(path, model.exact) is None


def load_pretrained(name: str, device: str | torch.device = "cpu", exact: bool | None = None) -> torch.nn.Module:
    """The released model ``name``, verified, in float32 and eval mode. ``exact``: True for
    the float32 copy (it must be in the cache), False for the shipped 8-bit copy, None for
    the float32 copy where it is in the cache and the shipped one otherwise. The model
    carries ``data`` (the fingerprint of its training data) and ``copy`` ('float32' or '8-bit')."""
    models = released()
    if name not in models:
        raise PretrainedError(f"no pretrained model {name!r}; there are {sorted(models)} (a set's SRNN and VRNN are "
                              f"released once the search protocol has chosen them: data/pretrained/README.md)")
    model = models[name]
    if exact is None:
        exact = exact_available(model)
    try:
        path = fetch(model.exact if exact else model.shipped)
    except DataError as err:
        raise PretrainedError(f"the exact float32 copy of {name!r} is not here: it is in the release archive "
                              f"(weights/{model.exact.name}); {err}".replace("\n", " ")) from None
    net = load_file(path)
    net.copy = "float32" if exact else "8-bit"
    return net.to(device).eval()


def load_file(path: Path | io.BytesIO) -> torch.nn.Module:
    """The model in one exported file (either copy, or its bytes), in float32 and eval mode, with ``data``."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise PretrainedError(f"{path} is not an srnn pretrained model of format {FORMAT}")
    net = build_model(Config.from_dict(saved["config"]))
    net.load_state_dict({k: dequantize(v, saved["scales"].get(k)) for k, v in saved["model"].items()})
    net.data = saved["data"]
    return net.eval()


def quantize(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A matrix as int8 with a float16 scale per row; a vector as float16 (no scale)."""
    if weight.dim() < 2:
        return weight.half(), None
    scale = (weight.abs().amax(1, keepdim=True) / 127).clamp_min(1e-12).half()
    return torch.round(weight / scale.float()).clamp(-127, 127).to(torch.int8), scale


def dequantize(stored: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
    """The float32 weight that :func:`quantize` stored (a float32 weight as it is)."""
    return stored.float() if scale is None else stored.float() * scale.float()
