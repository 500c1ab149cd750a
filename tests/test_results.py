"""Result records: round trip, version check, and the tables that compare them to the paper."""
import json

import pytest

from srnn.results import (PAPER_MUSIC, load_run, load_runs, music_table, run_name, seed_spread, speech_table,
                          write_run)


def record(run_id, dataset, elbo, domain="music", form="npz", variant="smooth+Resq"):
    return {"id": run_id, "domain": domain, "dataset": dataset, "data_form": form, "variant": variant,
            "profile": "paper", "test": {"elbo_per_step_seq": elbo, "elbo_per_step": elbo - 0.01,
                                         "elbo_per_seq": elbo * 40, "iwae_per_step_seq": elbo + 0.1,
                                         "iwae_samples": 100}}


def test_tables_use_each_main_run_and_mark_missing_rows(tmp_path):
    write_run(tmp_path / "music" / "a", record(run_name("jsb", "npz", "smooth+Resq"), "jsb", -4.9), [{"epoch": 1}])
    write_run(tmp_path / "music" / "b", record(run_name("jsb", "npz", "smooth+Resq", "kl-slow"), "jsb", -4.0), [])
    write_run(tmp_path / "speech" / "c", record("timit-smooth", "timit", 1000.0, "speech", "timit", "smooth"), [])
    runs = load_runs(tmp_path)
    assert len(runs) == 3 and runs[0]["history"] == [{"epoch": 1}]
    rows = {(r["data set"], r["data"]): r for r in music_table(runs)}
    jsb = rows[("JSB Chorales", "npz")]
    assert jsb["elbo"] == -4.9 and jsb["gap"] == pytest.approx(-4.9 - PAPER_MUSIC["jsb"])
    assert "run" not in rows[("MuseData", "npz")]            # no run yet, not a made-up number
    speech = {r["model"]: r for r in speech_table(runs)}
    assert speech["SRNN (smooth)"]["timit ours"] == 40000.0
    assert speech["SRNN (smooth+Resq)"]["timit ours"] is None


def test_seed_spread_gathers_one_settings_reruns_only(tmp_path):
    main = run_name("jsb", "npz", "smooth+Resq")
    for seed, suffix, elbo in [(123, "", -4.9), (124, "seed124", -4.8), (125, "seed125", -5.0),
                               (123, "kl-slow", -4.0)]:                  # another setting: left out
        write_run(tmp_path / "music" / f"{main}{suffix}", {**record(run_name("jsb", "npz", "smooth+Resq", suffix),
                                                                    "jsb", elbo), "seed": seed}, [])
    runs = load_runs(tmp_path)
    spread = seed_spread(runs, "jsb")
    assert spread["elbo"] == {123: -4.9, 124: -4.8, 125: -5.0}
    assert spread["mean"] == pytest.approx(-4.9) and spread["std"] == pytest.approx(0.1)
    assert (spread["best"], spread["worst"]) == (-4.8, -5.0)
    assert seed_spread(runs, "nottingham") is None                      # one seed or none: no spread


def test_bad_records_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results file"):
        load_run(tmp_path / "run.json")
    (tmp_path / "run.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(ValueError, match="results format 99"):
        load_run(tmp_path / "run.json")
