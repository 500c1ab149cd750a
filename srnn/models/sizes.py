"""How large the paper's models are: parameter counts of SRNN for a config, counted from the
shapes alone (the layers are built on torch's meta device: no memory, no weights drawn).

The Implementation page shows :func:`sizes_table`; the first-protocol page counts the music model's
weights with :func:`parameter_count`.
"""
from __future__ import annotations

import torch

from ..config import Config, preset
from .model import SRNN

PAPER_SRNN_PRESETS = ("blizzard", "timit", "music")   # the settings of Tables 1 and 2


def parameter_count(cfg: Config) -> int:
    """The number of weights of ``SRNN(cfg)``."""
    with torch.device("meta"):
        return sum(p.numel() for p in SRNN(cfg).parameters())


def sizes_table(names=PAPER_SRNN_PRESETS) -> tuple[list[str], list[tuple], dict[str, int]]:
    """One row per preset (smoothing + Resq) with its layer sizes, output distribution and
    parameter count, as (headers, rows) for :func:`srnn.book.plots.markdown_table`; and the
    counts by preset name."""
    counts, rows = {}, []
    for name in names:
        cfg = preset(name)
        counts[name] = parameter_count(cfg)
        rows.append((name, cfg.d_dim, cfg.z_dim, f"{cfg.mlp_dim} x {cfg.emission_layers}", cfg.output,
                     f"{counts[name]:,}"))
    return ["preset", "GRU units (d, a)", "z", "MLP units x layers", "output", "parameters"], rows, counts
