"""Do committed records still hold for today's code? Retrain the first epoch of each named
music run with its recorded config and compare the history's numbers bit for bit.

    python scripts/records_hold.py jsb-npz-smooth-resq nottingham-npz-smooth-resq-batch8-drop-dz

Run it on the kind of machine the records name (the committed CPU runs used one thread,
which the check sets); a GPU run's numbers differ from a CPU's by construction. Exits 1 if
any number differs. ``make test`` runs the same check over every JSB record of the
original code's protocol (tests/test_records_hold.py); this script reaches the others.
"""
from __future__ import annotations

import sys
from pathlib import Path

from srnn.records.replay import NOT_REPRODUCED, replay
from srnn.records.store import load_run

ROOT = Path(__file__).resolve().parents[1]


def main(run_ids: list[str]) -> int:
    differ = 0
    for run_id in run_ids:
        if run_id in NOT_REPRODUCED:
            print(f"{run_id}: known not to reproduce: {NOT_REPRODUCED[run_id]}")
        for key, (then, now) in replay(load_run(ROOT / "results" / "music" / run_id / "run.json")).items():
            same = then == now
            differ += not same
            print(f"{run_id} epoch 1 {key}: recorded {then!r}, today {now!r}"
                  + ("" if same else f"  DIFFERS by {now - then:.3g}"))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
