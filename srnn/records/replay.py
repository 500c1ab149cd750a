"""Do the committed records still hold? A record's first epoch is trained again with
today's code and its history line compared bit for bit: the check that ties the code to
the numbers the book shows.

The committed CPU runs ran with one thread; a GPU's numbers differ from a CPU's by
construction, so only CPU records of music runs are replayed. ``NOT_REPRODUCED`` lists
the records known not to reproduce at today's code, with the reason: the book and
``python -m srnn.results`` mark them wherever their numbers are shown, and the check
skips them. ``python scripts/records_hold.py`` replays any record by id; ``make test``
replays every JSB record of the original code's protocol (tests/test_records_hold.py).
"""
from __future__ import annotations

import tempfile

import torch

from ..config import Config
from ..datasets.music import dataset
from ..training.train import train

KEYS = ("train_elbo_per_step", "valid_elbo_per_step", "grad_norm")
_PHI_ONCE = ("made at 912fd1c, where phi ran once over x instead of over u and x (taken out "
             "since: it changes the products' rounding, and the records before it no longer "
             "reproduced); today's code differs from it at epoch 1")
NOT_REPRODUCED = {
    "muse-npz-smooth-resq-seed124": _PHI_ONCE,
    "muse-npz-smooth-resq-seed125": _PHI_ONCE,
}


def drift_mark(record: dict) -> str:
    """' †' for a record that today's code does not reproduce (it is in ``NOT_REPRODUCED``)."""
    return " †" if record["id"] in NOT_REPRODUCED else ""


def drift_notes(records: list[dict]) -> list[str]:
    """The footnotes of the marked records among ``records``, one per reason."""
    by_reason: dict[str, list[str]] = {}
    for r in records:
        if r["id"] in NOT_REPRODUCED:
            by_reason.setdefault(NOT_REPRODUCED[r["id"]], []).append(f"`{r['id']}`")
    return [f"† {', '.join(ids)}: {reason}." for reason, ids in by_reason.items()]


def replayable(record: dict) -> bool:
    """A music run that ran on a CPU with one thread, as today's code can repeat it here."""
    hardware = record.get("hardware", {})
    return (record.get("domain") == "music" and str(hardware.get("device", "")).startswith("cpu")
            and hardware.get("torch_threads") == 1 and record.get("processes", 1) == 1)


def replay(record: dict) -> dict[str, tuple[float, float]]:
    """Train the record's first epoch again (one thread, its config and data) and return
    ``{key: (recorded, today)}`` for the history numbers in KEYS."""
    cfg = Config.from_dict(record["config"]).replace(epochs=1, patience=0, device="cpu")
    data = dataset(record["dataset"], record["data_form"], batch_size=cfg.batch_size, window=cfg.window,
                   valid_state=cfg.valid_state)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            now = train(cfg, data.train, data.valid, tmp, data=data.fingerprint, progress=False)[0]
    finally:
        torch.set_num_threads(threads)
    return {key: (record["history"][0][key], now[key]) for key in KEYS}
