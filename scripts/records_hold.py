"""Do committed records still hold for today's code? Retrain the first epoch of each named
music run with its recorded config and compare the history's numbers bitwise.

    python scripts/records_hold.py jsb-npz-smooth-resq jsb-npz-smooth-resq-batch8-drop-dz

Run it with OMP_NUM_THREADS=1 on the kind of machine the records name (the committed CPU
runs used one thread); a GPU run's numbers differ from a CPU's by construction. Exits 1
if any number differs.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from srnn.config import Config
from srnn.datasets.music import dataset
from srnn.records.store import load_run
from srnn.training.train import train

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("train_elbo_per_step", "valid_elbo_per_step", "grad_norm")


def main(run_ids: list[str]) -> int:
    differ = 0
    for run_id in run_ids:
        record = load_run(ROOT / "results" / "music" / run_id / "run.json")
        cfg = Config.from_dict(record["config"]).replace(epochs=1, patience=0)
        data = dataset(record["dataset"], record["data_form"], batch_size=cfg.batch_size, window=cfg.window,
                       valid_state=cfg.valid_state)
        with tempfile.TemporaryDirectory() as tmp:
            now = train(cfg, data.train, data.valid, tmp, data=data.fingerprint, progress=False)[0]
        for key in KEYS:
            then = record["history"][0][key]
            same = then == now[key]
            differ += not same
            print(f"{run_id} epoch 1 {key}: recorded {then!r}, today {now[key]!r}"
                  + ("" if same else f"  DIFFERS by {now[key] - then:.3g}"))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
