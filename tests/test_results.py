"""Result records: round trip, version check, and the tables that compare them to the paper."""
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from srnn.config import preset
from srnn.experiment import VARIANTS
from srnn.records import grid
from srnn.records.paper import PAPER_MUSIC
from srnn.records.provenance import ProvenanceError, code_version, hardware
from srnn.records.store import load_run, load_runs, run_name, write_run
from srnn.records.tables import (
    baseline,
    chosen,
    equal_tuning,
    first_protocol,
    main_run,
    music_table,
    paper_settings,
    protocol,
    seed_spread,
    setting,
    speech_table,
)


def record(run_id, dataset, elbo, domain="music", form="npz", variant="smooth+Resq", seed=123,
           device="cpu: x86_64", legacy=False, valid=None, **config):
    name = "music" if domain == "music" else "timit"
    make = first_protocol if legacy else preset
    if variant == "VRNN":
        name, variant_fields = f"vrnn_{name}", {}
    else:
        inference, resq = VARIANTS[variant]
        variant_fields = {"inference": inference, "resq": resq}
    return {"id": run_id, "domain": domain, "dataset": dataset, "data_form": form, "variant": variant,
            "profile": "paper", "seed": seed, "hardware": {"device": device}, "epochs": 60, "best_epoch": 50,
            "train_wall_time_s": 3600.0, "valid_best": {"elbo_per_step": elbo if valid is None else valid},
            "config": make(name, **variant_fields, seed=seed, **config).to_dict(),
            "test": {"elbo_per_step_seq": elbo, "elbo_per_step": elbo - 0.01, "elbo_per_seq": elbo * 40,
                     "iwae_per_step_seq": elbo + 0.1, "iwae_samples": 100},
            "data": {"corpus": dataset, "recordings": {"train": 4389, "valid": 231, "test": 1680}, "left_out": 0},
            **({"protocol": "first: before the original code's protocol became the default"} if legacy else {})}


def music_run(folder, suffix, elbo, dataset="jsb", legacy=False, variant="smooth+Resq", **fields):
    run_id = run_name("music", dataset, "npz", variant, "-".join(filter(None, [suffix, "legacy" if legacy else ""])))
    write_run(folder / "music" / run_id, record(run_id, dataset, elbo, legacy=legacy, variant=variant, **fields),
              [{"epoch": 1}])


def test_table_2_shows_each_main_run_next_to_the_first_protocols_and_marks_missing_rows(tmp_path):
    music_run(tmp_path, "", -4.8)
    music_run(tmp_path, "kl-slow", -4.0, kl_epochs=40)                  # another setting: not the main run
    music_run(tmp_path, "", -4.9, legacy=True, device="cuda: NVIDIA H100")
    music_run(tmp_path, "cpu", -5.0, legacy=True)
    music_run(tmp_path, "", -3.0, dataset="nottingham", lr_decay_start=20)   # a departure: not the main run
    speech = run_name("speech", "timit", variant="smooth")
    write_run(tmp_path / "speech" / speech, record(speech, "timit", 1000.0, "speech", "", "smooth"), [])
    runs = load_runs(tmp_path)
    assert len(runs) == 6 and runs[0]["history"] == [{"epoch": 1}]
    assert [protocol(r) for r in runs] == ["original", "first", "original", "first", "original", "original"]
    rows = {r["dataset"]: r for r in music_table(runs)}
    jsb = rows["jsb"]
    assert jsb["run"] == "jsb-npz-smooth-resq" and jsb["gap"] == pytest.approx(-4.8 - PAPER_MUSIC["jsb"])
    assert jsb["before"] == -5.0 and jsb["before_run"] == "jsb-npz-smooth-resq-cpu-legacy"   # same device kind
    assert "run" not in rows["nottingham"] and "run" not in rows["muse"]   # no made-up numbers
    assert main_run(runs, "jsb", proto="first")["id"] == "jsb-npz-smooth-resq-legacy"
    speech_rows = {r["model"]: r for r in speech_table(runs)}
    assert speech_rows["SRNN (smooth)"]["timit ours"] == 40000.0
    assert speech_rows["SRNN (smooth+Resq)"]["timit ours"] is None
    tiny = run_name("speech", "timit", variant="smooth+Resq")            # not the paper's preset: not Table 1
    write_run(tmp_path / "speech" / tiny, {**record(tiny, "timit", 9.0, "speech", "", "smooth+Resq"),
                                           "config": preset("tiny").to_dict()}, [])
    assert speech_table(load_runs(tmp_path))[0]["timit ours"] is None
    sample = {**record(tiny, "timit", 9.0, "speech", "", "smooth+Resq"),                # the paper's config on
              "data": {"corpus": "timit", "recordings": {"train": 38, "valid": 2, "test": 10}, "left_out": 0}}
    write_run(tmp_path / "speech" / tiny, sample, [])                                  # 50 utterances: not TIMIT
    assert speech_table(load_runs(tmp_path))[0]["timit ours"] is None
    write_run(tmp_path / "speech" / tiny, {**sample, "data": record(tiny, "timit", 0, "speech")["data"]}, [])
    assert speech_table(load_runs(tmp_path))[0]["timit ours"] == 9.0 * 40              # the whole corpus counts


def test_the_setting_is_chosen_among_the_grid_on_validation_and_its_seeds_are_gathered(tmp_path):
    music_run(tmp_path, "", -4.8, valid=-4.70)
    music_run(tmp_path, "batch4", -4.2, valid=-4.60, batch_size=4)      # not a grid point: shown, never chosen
    music_run(tmp_path, "batch8", -4.9, valid=-4.65, batch_size=8)      # the best on validation, not on test
    music_run(tmp_path, "drop-dz", -4.5, valid=-4.69, drop_d=0.25, drop_z=0.25)
    music_run(tmp_path, "batch8-seed124", -4.7, seed=124, batch_size=8)
    music_run(tmp_path, "batch8-seed125", -4.8, seed=125, batch_size=8)
    music_run(tmp_path, "batch8-gpu", -4.1, batch_size=8, seed=126, device="cuda: H100")   # not a grid seed
    music_run(tmp_path, "batch8", -9.0, legacy=True, valid=-1.0, batch_size=8)            # another protocol
    runs = load_runs(tmp_path)
    c = chosen(runs, "jsb")
    assert c["chosen"]["id"] == "jsb-npz-smooth-resq-batch8" and len(c["candidates"]) == 3
    assert [r["id"] for r in c["earlier"]] == ["jsb-npz-smooth-resq-batch4"]
    assert c["missing"] == ["batch8-drop-dz"] and not c["complete"]
    assert [r["seed"] for r in c["seeds"]] == [123, 124, 125]
    assert c["mean"] == pytest.approx(-4.8) and c["std"] == pytest.approx(0.1)
    assert setting(c["chosen"]) == "batch_size=8" and setting(c["candidates"][-1]) == "the paper's settings"
    assert chosen(runs, "piano") is None and chosen(runs, "jsb", proto="first")["chosen"]["seed"] == 123
    missing = {line for line, done in grid.commands(runs) if not done}
    assert "music --dataset jsb --name batch8-drop-dz --set batch_size=8 drop_d=0.25 drop_z=0.25" in missing
    assert "music --dataset jsb --preset vrnn_music --name batch8 --set batch_size=8" in missing


def test_srnn_and_vrnn_are_compared_once_both_searches_are_complete(tmp_path):
    for variant, shift in (("smooth+Resq", 0.0), ("VRNN", -0.2)):
        for setting_name, fields in grid.SETTINGS.items():
            valid = -4.6 if setting_name == "drop-dz" else -4.8
            music_run(tmp_path, setting_name, -4.7 + shift, variant=variant, valid=valid, **fields)
        assert not equal_tuning(load_runs(tmp_path), "jsb")["verdict"]        # the seeds are still to run
        for seed, elbo in ((124, -4.6), (125, -4.8)):
            music_run(tmp_path, f"drop-dz-seed{seed}", elbo + shift, variant=variant, seed=seed,
                      drop_d=0.25, drop_z=0.25)
    found = equal_tuning(load_runs(tmp_path), "jsb")
    assert found["SRNN"]["complete"] and found["VRNN"]["complete"] and found["verdict"] == "SRNN"
    assert found["difference"] == pytest.approx(0.2) and found["se"] == pytest.approx((2 * 0.01 / 3) ** 0.5)
    assert found["VRNN"]["paper"] is None and found["SRNN"]["paper"] == PAPER_MUSIC["jsb"]


def test_seed_spread_gathers_the_paper_settings_by_device(tmp_path):
    music_run(tmp_path, "", -4.9, device="cuda: NVIDIA H100")
    music_run(tmp_path, "cpu", -5.0)
    music_run(tmp_path, "seed124", -4.8, seed=124)
    music_run(tmp_path, "seed125", -5.0, seed=125)
    music_run(tmp_path, "kl-slow", -4.0, kl_epochs=40)                # another setting: left out
    music_run(tmp_path, "seed126", -3.0, seed=126, legacy=True)       # another protocol: left out
    runs = load_runs(tmp_path)
    [spread] = seed_spread(runs, "jsb")                                 # one GPU seed: no GPU spread
    assert spread["device"] == "cpu" and spread["elbo"] == {123: -5.0, 124: -4.8, 125: -5.0}
    assert spread["mean"] == pytest.approx(-14.8 / 3) and (spread["best"], spread["worst"]) == (-4.8, -5.0)
    assert seed_spread(runs, "nottingham") == []
    assert [r["id"] for r in runs if paper_settings(r)] == [run_name("music", "jsb", "npz", "smooth+Resq", s)
                                                            for s in ("", "cpu", "seed124", "seed125",
                                                                      "seed126-legacy")]


def test_a_change_is_measured_against_the_same_seed_protocol_and_kind_of_device(tmp_path):
    music_run(tmp_path, "", -4.9, device="cuda: NVIDIA H100")
    music_run(tmp_path, "cpu", -5.0)
    music_run(tmp_path, "eps", -4.95, adam_eps=1e-8)
    music_run(tmp_path, "eps-gpu", -4.8, adam_eps=1e-8, device="cuda: NVIDIA H100")
    music_run(tmp_path, "eps-seed7", -4.7, seed=7, adam_eps=1e-8)
    music_run(tmp_path, "old", -5.1, legacy=True)
    music_run(tmp_path, "eps", -5.2, legacy=True, adam_eps=1e-8)
    runs = {r["id"].replace("-legacy", "-old").split("-")[-1] if r["id"].endswith("eps-legacy") else
            r["id"].split("-")[-1]: r for r in load_runs(tmp_path)}
    every = list(runs.values())
    assert baseline(every, runs["eps"])["id"].endswith("-cpu")
    assert baseline(every, runs["gpu"])["id"] == run_name("music", "jsb", "npz", "smooth+Resq")
    assert baseline(every, runs["seed7"]) is None
    assert baseline(every, runs["old"])["id"] == "jsb-npz-smooth-resq-old-legacy"


def test_bad_records_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results file"):
        load_run(tmp_path / "run.json")
    (tmp_path / "run.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(ValueError, match="results format 99"):
        load_run(tmp_path / "run.json")


@pytest.mark.parametrize("domain", ["music", "speech"])
def test_the_experiments_scripts_list_exactly_the_committed_runs(domain):
    """experiments/<domain>.sh is the one place a reader finds the command of every committed
    run: no run without its line, no line without its run."""
    root = Path(__file__).resolve().parents[1]
    listed = subprocess.run(["bash", str(root / "experiments" / f"{domain}.sh"), "--list"], capture_output=True,
                            text=True, check=True).stdout.splitlines()
    runs = load_runs(root / "results" / domain, profile="paper")
    committed = [r["command"] for r in runs]
    assert committed, f"no committed {domain} run found"
    if domain == "music":               # and the search grid's runs still to make
        committed += [f"python -m srnn.experiment {line}" for line, done in grid.commands(runs) if not done]

    def arguments(commands):            # what follows 'python -m srnn.experiment'
        return sorted(tuple(shlex.split(c)[3:]) for c in commands)

    assert arguments(listed) == arguments(committed)


@pytest.mark.parametrize("visible, gpus", [(None, {"0", "1"}), ("4,6", {"4", "6"})])
def test_the_music_script_gives_each_gpu_one_run_at_a_time(tmp_path, visible, gpus):
    """On a box with two GPUs (or two of its GPUs made visible), every run goes to one of
    them and both take runs."""
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "experiments").mkdir()
    script = tmp_path / "experiments" / "music.sh"
    script.write_text((root / "experiments" / "music.sh").read_text())
    python = tmp_path / "python"      # says there are 2 GPUs; a 'run' notes the GPU it was given
    python.write_text(f'#!/bin/sh\nif [ "$2" = "srnn.records.grid" ]; then exec {sys.executable} "$@"; fi\n'
                      f'if [ "$1" = "-c" ]; then echo 2; else echo "$CUDA_VISIBLE_DEVICES" >> {tmp_path}/gpus; fi\n')
    (tmp_path / "results").symlink_to(root / "results")            # the grid reads the committed records
    (tmp_path / "srnn").symlink_to(root / "srnn")
    python.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "PY": str(python), **({"CUDA_VISIBLE_DEVICES": visible} if visible else {})}
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    listed = subprocess.run(["bash", str(script), "--list"], capture_output=True, text=True).stdout.splitlines()
    given = (tmp_path / "gpus").read_text().split()
    assert len(given) == len(listed) and set(given) == gpus


def git(root, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root,
                          capture_output=True, text=True, check=True).stdout.strip()


def test_the_code_version_is_the_full_commit_and_a_dirty_tree_is_refused(tmp_path, monkeypatch):
    git(tmp_path, "init", "-q")
    (tmp_path / "model.py").write_text("slope = 1 / 3\n")
    git(tmp_path, "add", "model.py")
    git(tmp_path, "commit", "-qm", "model")
    head = git(tmp_path, "rev-parse", "HEAD")
    assert code_version(root=tmp_path) == {"commit": head, "dirty": False} and len(head) == 40
    (tmp_path / "notes.txt").write_text("untracked files do not make a tree dirty\n")
    assert code_version(root=tmp_path)["dirty"] is False
    (tmp_path / "model.py").write_text("slope = 1 / 4\n")
    with pytest.raises(ProvenanceError, match=r"uncommitted changes \(model.py\).*--allow-dirty"):
        code_version(root=tmp_path)
    dirty = code_version(allow_dirty=True, root=tmp_path)
    assert dirty["commit"] == head and dirty["dirty"] is True and len(dirty["diff_sha256"]) == 64
    (tmp_path / "model.py").write_text("slope = 1 / 5\n")
    assert code_version(allow_dirty=True, root=tmp_path)["diff_sha256"] != dirty["diff_sha256"]

    bare = tmp_path / "copy"                                         # a copy without git history
    bare.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    with pytest.raises(ProvenanceError, match="not a git checkout"):
        code_version(root=bare)
    monkeypatch.setenv("SRNN_COMMIT", head)
    assert code_version(allow_dirty=True, root=bare) == {
        "commit": head, "dirty": None, "note": "no git history: stated by SRNN_COMMIT, not checked"}


def test_the_record_names_the_engine_of_the_matrix_products(monkeypatch):
    monkeypatch.setenv("LD_PRELOAD", "/opt/libfast.so")
    torch.set_float32_matmul_precision("medium")
    try:
        record = hardware("cpu")
    finally:
        torch.set_float32_matmul_precision("highest")
    assert record["products"]["preload"] == "/opt/libfast.so"
    assert record["products"]["fp32_matmul_precision"] == "medium"
    assert record["products"]["blas"].split()[0] == torch.__config__.show().split("BLAS_INFO=")[1].split(",")[0]
    assert record["cpu"] and hardware("cpu")["products"]["fp32_matmul_precision"] == "highest"


def test_every_committed_record_names_a_commit_of_the_history_or_says_unknown():
    root = Path(__file__).resolve().parents[1]
    shallow = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=root, capture_output=True,
                             text=True)
    if shallow.returncode != 0 or shallow.stdout.strip() != "false":
        pytest.skip("needs the repository's full history")
    for record in load_runs(root / "results"):
        commit = record["code"]["commit"]
        if commit == "unknown":
            assert record["code"].get("note"), record["id"]
            continue
        found = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=root, capture_output=True)
        assert len(commit) == 40 and found.returncode == 0, f"{record['id']}: commit {commit} is not in the history"


def test_every_start_of_a_run_is_logged_with_its_code(tmp_path):
    from srnn.experiment import _log_start
    first = _log_start(tmp_path / "run", {"code": {"commit": "a" * 40, "dirty": False}, "hardware": {}}, 0)
    starts = _log_start(tmp_path / "run", {"code": {"commit": "b" * 40, "dirty": False}, "hardware": {}}, 2)
    assert len(first) == 1 and [s["epochs_done"] for s in starts] == [0, 2]
    assert [s["code"]["commit"][0] for s in starts] == ["a", "b"]
    assert json.loads((tmp_path / "run" / "starts.json").read_text()) == starts


def test_the_results_page_tables_say_no_run_yet_and_where_we_fall_short(tmp_path):
    from srnn.records import report
    music_run(tmp_path, "", -4.8, valid=-4.7)
    music_run(tmp_path, "batch8", -4.6, valid=-4.6, batch_size=8)
    music_run(tmp_path, "batch4", -4.5, valid=-4.5, batch_size=4)          # not a grid point
    music_run(tmp_path, "", -8.3, dataset="piano", valid=-7.6)
    runs = load_runs(tmp_path)
    headers, rows = report.table_2(runs)
    by_set = {row[0]: dict(zip(headers, row)) for row in rows}
    assert by_set["JSB Chorales"]["gap"] == "-0.060" and by_set["Nottingham"]["ours: ELBO / step"] == report.NO_RUN
    _, rows, lines = report.chosen_table(runs)
    assert [row[1] for row in rows if row[0] == "JSB Chorales"] == [
        "batch_size=8 **(chosen)**", "the paper's settings", "batch_size=4 (tried before the grid; not a candidate)",
        "drop_d=0.25, drop_z=0.25 (grid point, not run yet)",
        "batch_size=8, drop_d=0.25, drop_z=0.25 (grid point, not run yet)"]
    assert "0.140 at or above the paper's -4.74" in lines[0] and "2 of the grid's 4 points have not run" in lines[0]
    assert [row[4] for row in rows[:2]] == ["-4.600 (one path)", "-4.800 (one path)"]
    short = report.shortfalls(runs)
    assert short[0].startswith("- Nottingham: no run") and "Piano-midi.de: 0.100 below the paper" in short[-1]


def test_seeds_of_a_setting_are_found_across_config_fields_added_between_them(tmp_path):
    music_run(tmp_path, "", -4.8)
    older = record("jsb-npz-smooth-resq-seed124", "jsb", -4.9, seed=124)
    del older["config"]["drop_d"]                          # written before the field existed: it ran as 0
    write_run(tmp_path / "music" / older["id"], older, [])
    assert [r["seed"] for r in chosen(load_runs(tmp_path), "jsb")["seeds"]] == [123, 124]


def test_results_readme_shows_where_we_stand_as_the_records_say():
    from srnn.records.report import where_we_stand
    from srnn.results import CLONE_RESULTS, STAND, readme_with
    text = (CLONE_RESULTS / "README.md").read_text()
    summary = where_we_stand(load_runs(CLONE_RESULTS))
    assert readme_with(text, summary) == text, "results/README.md is stale: run python -m srnn.results --readme"
    assert text.count(STAND[0]) == text.count(STAND[1]) == 1


def test_a_baseline_with_its_preset_has_the_papers_settings():
    from srnn.records.tables import departures
    vrnn = {"config": preset("vrnn_music").to_dict()}
    assert departures(vrnn) == [] and paper_settings(vrnn)
    assert departures({"config": preset("vrnn_music", vrnn_prior="standard").to_dict()}) == []
    assert departures({"config": preset("rnn_timit", batch_size=8).to_dict()}) == ["batch_size=8"]
    assert departures({"config": preset("rnn_speech_small").to_dict()}) == ["preset 'rnn_speech_small'"]


def test_the_baselines_page_tests_each_claim_and_the_permutation(tmp_path):
    from srnn.records import model_comparison, report

    def speech(variant, elbo, kl=1.0):
        return {"id": f"sample-{variant}", "epochs": 40, "best_epoch": 38,
                "test": {"elbo_per_seq": elbo, "elbo_per_step": elbo / 40, "kl_per_step": kl}}
    plain = {"smooth+Resq": speech("smooth+Resq", 3600.0), "filt+Resq": speech("filt+Resq", 3500.0),
             "VRNN": speech("VRNN", 3400.0), "RNN": speech("RNN", -200.0)}
    lines = model_comparison.claims(plain)
    assert any("smoothing posterior beats filtering (with Resq): **holds** here, 3,600.0" in x for x in lines)
    assert any("(without Resq): not tested yet (no run of smooth)" in x for x in lines)
    assert any("SRNN) beats feeding z back (VRNN): **holds**" in x and "+200.0" in x for x in lines)
    permuted = {"smooth+Resq": speech("smooth+Resq", 3000.0), "VRNN": speech("VRNN", 3100.0),
                "RNN": speech("RNN", -400.0)}
    headers, rows = model_comparison.permutation_table(plain, permuted)
    assert rows[0] == ("SRNN, smoothing + Resq", "3,600.0", 1, "3,000.0", 2, "-600.0")
    assert [r[0] for r in rows] == ["SRNN, smoothing + Resq", "VRNN", "RNN"]      # the models run on both
    assert model_comparison.model_table(plain)[1][3][1:3] == ("-200.0", "-")
    music_headers, music_rows = model_comparison.baselines_music([])
    assert music_rows[0] == ("JSB Chorales", "-4.74", *[report.NO_RUN] * 4)
    music = {"smooth+Resq": {"test": {"elbo_per_step_seq": -5.004}}, "VRNN": {"test": {"elbo_per_step_seq": -4.958}}}
    lines = model_comparison.music_claims(music)
    assert len(lines) == 4 and any("beats feeding z back (VRNN): **does not hold** here, -5.004" in x
                                   and "-0.046 nats per step" in x for x in lines)
    vrnn = {"id": "jsb-npz-vrnn", "epochs": 62, "best_epoch": 52,
            "test": {"elbo_per_step_seq": -4.958, "iwae_per_step_seq": -4.811, "iwae_samples": 100, "kl_per_step": 1.5}}
    assert model_comparison.music_model_table({"VRNN": vrnn})[1] == [
        ("VRNN", "-4.958", "-4.811 (K=100)", "1.500", "62 (52)", "`jsb-npz-vrnn`")]


def test_table_1_sets_the_quoted_baselines_beside_ours():
    from srnn.records import report
    runs = [{**record("timit-vrnn", "timit", 30000.0 / 40, "speech", "", "smooth+Resq"), "variant": "VRNN",
             "config": preset("vrnn_timit").to_dict()}]
    rows = {r[0]: r for r in report.table_1(runs)[1]}
    assert rows["VRNN-Gauss"][4:] == ("28,805", "30,000", "+1,195")
    assert rows["VRNN-GMM"][2] == report.NO_RUN and rows["RNN-Gauss"][1] == "-"


def test_a_record_names_its_command_without_where_its_files_lie():
    from srnn.experiment import _without_places
    argv = ["music", "--dataset", "jsb", "--runs", "/tmp/r", "--name", "x", "--results=/tmp/s", "--set", "seed=1"]
    assert _without_places(argv) == ["music", "--dataset", "jsb", "--name", "x", "--set", "seed=1"]


def test_the_command_line_marks_a_seed_that_todays_code_does_not_reproduce(tmp_path, monkeypatch, capsys):
    from srnn.records import replay, tables
    music_run(tmp_path, "", -4.8)
    music_run(tmp_path, "seed124", -4.7, seed=124)
    monkeypatch.setitem(replay.NOT_REPRODUCED, "jsb-npz-smooth-resq-seed124", "made by other code")
    tables.print_tables(load_runs(tmp_path))
    out = capsys.readouterr().out
    assert "seeds 123, 124 †: -4.750" in out
    assert "† jsb-npz-smooth-resq-seed124: made by other code." in out
