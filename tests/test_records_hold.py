"""The committed records still hold for today's code: every JSB record of the original
code's protocol trains its first epoch again to the same numbers, bit for bit (two at a
time, one thread each). Moving or rewriting code must keep these numbers, or list the
records it changes in ``srnn.records.replay.NOT_REPRODUCED`` with the reason."""
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from srnn.records.replay import NOT_REPRODUCED, replay, replayable
from srnn.records.store import load_runs
from srnn.records.tables import protocol

RESULTS = Path(__file__).resolve().parents[1] / "results"


def jsb_records() -> list[dict]:
    return [r for r in load_runs(RESULTS, profile="paper") if r.get("dataset") == "jsb"
            and protocol(r) == "original" and replayable(r) and r["id"] not in NOT_REPRODUCED]


def test_every_jsb_record_of_the_original_protocol_trains_its_first_epoch_to_the_same_numbers():
    records = jsb_records()
    assert len(records) >= 11, [r["id"] for r in records]
    assert {r["variant"] for r in records} >= {"smooth+Resq", "VRNN", "VRNN-I", "RNN"}
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        found = dict(zip((r["id"] for r in records), pool.map(replay, records)))
    differ = {run: {key: pair for key, pair in numbers.items() if pair[0] != pair[1]}
              for run, numbers in found.items()}
    assert not any(differ.values()), {run: d for run, d in differ.items() if d}


def test_records_known_not_to_reproduce_exist_and_say_why():
    ids = {r["id"] for r in load_runs(RESULTS)}
    for run_id, reason in NOT_REPRODUCED.items():
        assert run_id in ids and len(reason) > 40, run_id
