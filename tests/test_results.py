"""Result records: round trip, version check, and the tables that compare them to the paper."""
import json
import shlex
import subprocess
from pathlib import Path

import pytest

from srnn.config import preset
from srnn.results import (PAPER_MUSIC, baseline, load_run, load_runs, music_table, paper_settings, run_name,
                          seed_spread, speech_table, write_run)


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


def music_run(folder, suffix, elbo, seed=123, device="cpu: x86_64", **config):
    run_id = run_name("jsb", "npz", "smooth+Resq", suffix)
    write_run(folder / "music" / run_id, {**record(run_id, "jsb", elbo), "seed": seed,
                                          "config": preset("music", seed=seed, **config).to_dict(),
                                          "hardware": {"device": device}}, [])


def test_seed_spread_gathers_the_paper_settings_by_device(tmp_path):
    music_run(tmp_path, "", -4.9, device="cuda: NVIDIA H100")
    music_run(tmp_path, "cpu", -5.0)
    music_run(tmp_path, "seed124", -4.8, seed=124)
    music_run(tmp_path, "seed125", -5.0, seed=125)
    music_run(tmp_path, "kl-slow", -4.0, kl_epochs=40)                # another setting: left out
    runs = load_runs(tmp_path)
    [spread] = seed_spread(runs, "jsb")                                 # one GPU seed: no GPU spread
    assert spread["device"] == "cpu" and spread["elbo"] == {123: -5.0, 124: -4.8, 125: -5.0}
    assert spread["mean"] == pytest.approx(-14.8 / 3) and (spread["best"], spread["worst"]) == (-4.8, -5.0)
    assert seed_spread(runs, "nottingham") == []
    assert [r["id"] for r in runs if paper_settings(r)] == [run_name("jsb", "npz", "smooth+Resq", s)
                                                            for s in ("", "cpu", "seed124", "seed125")]


def test_a_change_is_measured_against_the_same_seed_on_the_same_kind_of_device(tmp_path):
    music_run(tmp_path, "", -4.9, device="cuda: NVIDIA H100")
    music_run(tmp_path, "cpu", -5.0)
    music_run(tmp_path, "eps", -4.95, adam_eps=1e-8)
    music_run(tmp_path, "eps-gpu", -4.8, adam_eps=1e-8, device="cuda: NVIDIA H100")
    music_run(tmp_path, "eps-seed7", -4.7, seed=7, adam_eps=1e-8)
    runs = {r["id"].split("-")[-1]: r for r in load_runs(tmp_path)}
    assert baseline(list(runs.values()), runs["eps"])["id"].endswith("-cpu")
    assert baseline(list(runs.values()), runs["gpu"])["id"] == run_name("jsb", "npz", "smooth+Resq")
    assert baseline(list(runs.values()), runs["seed7"]) is None


def test_bad_records_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results file"):
        load_run(tmp_path / "run.json")
    (tmp_path / "run.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(ValueError, match="results format 99"):
        load_run(tmp_path / "run.json")


def test_music_sh_lists_exactly_the_committed_music_runs():
    """experiments/music.sh is the one place a reader finds the command of every committed
    music run: no run without its line, no line without its run."""
    root = Path(__file__).resolve().parents[1]
    listed = subprocess.run(["bash", str(root / "experiments" / "music.sh"), "--list"], capture_output=True,
                            text=True, check=True).stdout.splitlines()
    committed = [r["command"] for r in load_runs(root / "results" / "music", profile="paper")]
    assert committed, "no committed music run found"

    def arguments(commands):            # what follows 'python -m srnn.experiment'
        return sorted(tuple(shlex.split(c)[3:]) for c in commands)

    assert arguments(listed) == arguments(committed)
