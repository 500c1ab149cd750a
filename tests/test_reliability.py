"""One run is one run, records are atomic, settings are checked, and a user error is one line.

Each test reproduces a way the project once gave a silent wrong result, lost a file or
answered a user's mistake with a traceback.
"""
import dataclasses
import json
import math
import os
from types import SimpleNamespace

import pytest
import torch
from test_train import toy_run

from srnn import experiment, results, runner
from srnn.config import ConfigError, ConfigTypeError, preset
from srnn.errors import UserError, command_line
from srnn.experiment import default_run_id, run_experiment
from srnn.files import FileFormatError, read_json, write_atomic
from srnn.records.store import RecordError, load_run, load_runs, write_run
from srnn.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from srnn.training.devices import DeviceError, resolve_device
from srnn.training.train import implausible, train


def toy_data(fingerprint="corpus A", name="toy"):
    cfg, train_data, valid = toy_run(epochs=2)
    return cfg, SimpleNamespace(name=name, fingerprint={"sha256": fingerprint}, train=train_data,
                                valid=valid, test=valid)


def run(cfg, data, tmp_path, run_id="toy-smooth-resq", **kw):
    return run_experiment(cfg, data, run_id, "music", runs_root=tmp_path / "runs", results_root=tmp_path / "results",
                          iwae_samples=kw.pop("iwae_samples", 1), profile="smoke", progress=False, **kw)


# --- one run is one run --------------------------------------------------------------------

def test_a_run_folder_refuses_other_data_and_names_what_differs(tmp_path):
    cfg, first = toy_data("corpus A")
    record = run(cfg, first, tmp_path)
    _, second = toy_data("corpus B")
    with pytest.raises(CheckpointError, match=r'data.sha256: "corpus A" there, "corpus B" here.*--name'):
        run(cfg, second, tmp_path)
    assert load_run(tmp_path / "results/music/toy-smooth-resq/run.json")["data"] == record["data"]   # untouched


def test_a_record_is_never_overwritten_by_another_config(tmp_path):
    cfg, data = toy_data()
    run(cfg, data, tmp_path)
    (tmp_path / "runs" / "toy-smooth-resq" / "last.pt").unlink()        # even with the checkpoints gone
    with pytest.raises(CheckpointError, match=r"run.json belongs to another run \(config.lr: 0.001 there, 0.01"):
        run(cfg.replace(lr=0.01), data, tmp_path)


def test_the_same_command_again_is_the_same_run(tmp_path):
    cfg, data = toy_data()
    first = run(cfg, data, tmp_path)
    again = run(cfg, data, tmp_path)
    assert again["test"] == first["test"] and again["epochs"] == first["epochs"] == 2


def test_another_runs_best_checkpoint_is_not_tested_as_this_run(tmp_path):
    cfg, data = toy_data()
    run(cfg, data, tmp_path, run_id="a")
    run(cfg.replace(seed=7), data, tmp_path, run_id="b")
    runs = tmp_path / "runs"
    (runs / "a" / "best.pt").write_bytes((runs / "b" / "best.pt").read_bytes())
    with pytest.raises(CheckpointError, match=r"best.pt belongs to another run \(config.seed: 7 there, 0 here\)"):
        run(cfg, data, tmp_path, run_id="a")


def test_a_best_checkpoint_of_another_epoch_is_refused(tmp_path):
    cfg, data = toy_data()
    run(cfg, data, tmp_path)
    best = tmp_path / "runs" / "toy-smooth-resq" / "best.pt"
    ckpt = load_checkpoint(best)
    ckpt["history"] = ckpt["history"][:-1] + [{**ckpt["history"][-1], "epoch": 99}]
    save_checkpoint(best, {k: v for k, v in ckpt.items() if k != "format"})
    with pytest.raises(CheckpointError, match="holds epoch 99, but this run's best validation epoch is"):
        run(cfg, data, tmp_path)


def test_a_finished_run_without_its_best_checkpoint_says_how_to_go_on(tmp_path):
    cfg, data = toy_data()
    run(cfg, data, tmp_path)
    (tmp_path / "runs" / "toy-smooth-resq" / "best.pt").unlink()
    with pytest.raises(CheckpointError, match=r"best.pt is missing.*delete .* and run the same command again"):
        run(cfg, data, tmp_path)


def test_a_run_that_is_being_trained_is_not_trained_by_a_second_process(tmp_path):
    from srnn.files import BusyError, locked
    cfg, data = toy_data()
    with locked(tmp_path / "runs" / ".toy-smooth-resq.lock", "a test", wait=False), \
            pytest.raises(BusyError, match="another process is busy with the run toy-smooth-resq"):
        run(cfg, data, tmp_path)
    assert run(cfg, data, tmp_path)["epochs"] == 2            # and once it is free, it runs


def test_a_page_waits_for_a_run_another_page_is_training(tmp_path, capsys):
    import threading

    from srnn.files import locked
    cfg, data = toy_data()
    held, release = threading.Event(), threading.Event()

    def other_page():
        with locked(tmp_path / "runs" / ".toy-smooth-resq.lock", "a test", wait=False):
            held.set()
            release.wait(10)
    threading.Thread(target=other_page).start()
    held.wait(10)
    threading.Timer(1.0, release.set).start()
    assert run(cfg, data, tmp_path, wait_busy=True)["epochs"] == 2
    assert release.is_set()
    assert "waiting for another process busy with the run toy-smooth-resq" in capsys.readouterr().err


def test_a_checkpoint_that_names_no_data_is_not_resumed_with_data(tmp_path):
    cfg, train_data, valid = toy_run(epochs=1)
    train(cfg, train_data, valid, tmp_path, data={"sha256": "x"}, progress=False)
    ckpt = load_checkpoint(tmp_path / "last.pt")
    del ckpt["data"]                                       # as written before checkpoints named it
    torch.save(ckpt, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="written before checkpoints named their data"):
        train(cfg.replace(epochs=2), train_data, valid, tmp_path, data={"sha256": "x"}, progress=False)


def test_run_ids_name_the_model_a_foreign_preset_and_a_folder_corpus_by_content():
    music = SimpleNamespace(name="jsb-npz", fingerprint={})
    assert default_run_id("music", music, preset("music"), None) == "jsb-npz-smooth-resq"
    assert default_run_id("music", music, preset("tiny"), "x") == "jsb-npz-smooth-resq-tiny-x"
    assert default_run_id("music", music, preset("vrnn_music"), None) == "jsb-npz-vrnn"
    assert default_run_id("music", music, preset("vrnn_music", vrnn_prior="standard"), None) == "jsb-npz-vrnn-i"
    assert default_run_id("music", music, preset("rnn_timit"), None) == "jsb-npz-rnn-rnn_timit"
    whole = {"corpus": "timit", "recordings": {"train": 4389, "valid": 231, "test": 1680}, "left_out": 0}
    timit = SimpleNamespace(name="timit", fingerprint=whole)
    filt = dict(inference="filtering", resq=False)
    assert default_run_id("speech", timit, preset("timit", **filt), None) == "timit-filt"
    assert default_run_id("speech", timit, preset("speech_small", **filt), None) == "timit-filt-speech_small"
    for part in ({**whole, "recordings": {"train": 38, "valid": 2, "test": 10}}, {**whole, "left_out": 1},
                 {**whole, "permute_seed": 1}):                  # a part of TIMIT never takes the paper run's id
        found = default_run_id("speech", SimpleNamespace(name="timit", fingerprint=part), preset("timit"), None)
        assert found.startswith("timit-") and found.endswith("-smooth-resq") and len(found.split("-")[1]) == 8
    one, two = (SimpleNamespace(name="folder", fingerprint={"splits": {"train": s}}) for s in ("a", "b"))
    ids = {default_run_id("speech", d, preset("speech_small"), None) for d in (one, two)}
    assert len(ids) == 2 and all(i.startswith("folder-") and len(i.split("-")[1]) == 8 for i in ids)


def test_a_preset_for_other_data_is_refused_before_training():
    from srnn.experiment import check_fits
    speech = SimpleNamespace(name="sample", samples_per_step=200)
    with pytest.raises(UserError, match="preset 'vrnn_music' models 88 bernoulli values per step, but sample has 200"):
        check_fits(preset("vrnn_music"), "speech", speech)
    check_fits(preset("rnn_speech_small"), "speech", speech)
    with pytest.raises(UserError, match="choose a preset made for music"):
        check_fits(preset("timit"), "music", SimpleNamespace(name="jsb-npz"))


# --- settings are checked where they enter --------------------------------------------------

@pytest.mark.parametrize("field, value, message", [
    ("clip_norm", -1.0, "'clip_norm' must be > 0"), ("clip_value", -1.0, "'clip_value' must be > 0"),
    ("kl_increment", math.nan, "'kl_increment' must be a finite number"), ("lr", math.inf, "'lr' must be a finite"),
    ("lr", 0.0, "'lr' must be > 0"), ("d_dim", -3, "'d_dim' must be >= 1"), ("kl_start", 1.5, "in \\[0, 1\\]"),
    ("batch_size", 0, "'batch_size' must be >= 1"), ("drop_z", 1.0, "dropout probability"),
])
def test_out_of_range_settings_are_refused(field, value, message):
    with pytest.raises(ConfigError, match=message):
        preset("music", **{field: value})


def test_wrong_types_and_unknown_fields_are_refused():
    with pytest.raises(ConfigTypeError, match="'epochs' must be int, got '3'"):
        preset("music", epochs="3")
    with pytest.raises(ConfigTypeError, match="'lr' must be float, got True"):
        preset("music", lr=True)
    with pytest.raises(ConfigError, match=r"unknown config field\(s\) \['epoch'\]"):
        preset("music", epoch=3)
    with pytest.raises(ConfigError, match="unknown preset 'musik'"):
        preset("musik")


def test_an_unavailable_device_is_one_clear_error():
    with pytest.raises(DeviceError, match="not a torch device name"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="'cuda' is not available on this machine"):
            resolve_device("cuda")


def test_the_importance_weighted_bound_needs_at_least_one_sample(tmp_path):
    cfg, data = toy_data()
    with pytest.raises(UserError, match=r"iwae_samples and test_paths must be at least 1, got 0 and 10"):
        run(cfg, data, tmp_path, iwae_samples=0)


def test_a_diverging_run_warns_in_its_history_and_record():
    history = [{"epoch": 1, "train_elbo_per_step": -300.0}]
    assert implausible(history, {"epoch": 2, "train_elbo_per_step": -250.0}) is None
    warning = implausible(history, {"epoch": 9, "train_elbo_per_step": -69790.0})
    assert "epoch 9" in warning and "diverged" in warning


# --- records are atomic and damaged files are named ---------------------------------------------

def test_a_failed_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    path = write_atomic(tmp_path / "run.json", '{"old": true}')

    def full_disk(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError):
        write_atomic(path, '{"new": ' + "0" * 10000 + "}")
    assert json.loads(path.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]          # no temporary file left behind


def test_a_record_with_a_nan_is_not_written(tmp_path):
    with pytest.raises(RecordError, match=r"non-finite values at test.elbo_per_step"):
        write_run(tmp_path / "r", {"id": "r", "test": {"elbo_per_step": math.nan}}, [])
    assert not (tmp_path / "r" / "run.json").exists()


def test_a_damaged_record_is_named(tmp_path):
    folder = tmp_path / "music" / "cut-short"
    write_run(folder, {"id": "cut-short", "profile": "paper"}, [{"epoch": 1}])
    (folder / "run.json").write_text((folder / "run.json").read_text()[:20])
    with pytest.raises(FileFormatError, match=r"cut-short/run.json is not valid JSON .*git checkout"):
        load_runs(tmp_path)
    write_run(folder, {"id": "cut-short"}, [{"epoch": 1}])
    (folder / "history.jsonl").write_text('{"epoch": 1}\n{"epo')
    with pytest.raises(FileFormatError, match="history.jsonl line 2 is not valid JSON"):
        load_run(folder / "run.json")
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(FileFormatError, match="x.json is not valid JSON"):
        read_json(tmp_path / "x.json")


# --- one line per user error --------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["music", "--dataset", "jsb", "--preset", "musik"], "error: unknown preset 'musik'"),
    (["music", "--dataset", "jsb", "--set", "epoch=3"], "error: unknown config field(s) ['epoch']"),
    (["music", "--dataset", "jsb", "--set", "clip_norm=-1"], "error: config field 'clip_norm' must be > 0"),
    (["music", "--dataset", "jsb", "--set", "batch_size"], "error: --set takes FIELD=VALUE, got 'batch_size'"),
    (["music", "--dataset", "jsb", "--set", "device=gpu"], "error: device 'gpu' is not a torch device name"),
    (["speech"], "error: speech runs need --prepared FOLDER"),
])
def test_experiment_errors_are_one_line(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        experiment.main([*argv, "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results"),
                         "--profile", "smoke"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith(message) and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_argument_errors_exit_with_usage(capsys):
    for argv in (["music"], ["music", "--dataset", "jsb", "--iwae-samples", "0"], ["music", "--dataset", "bach"]):
        with pytest.raises(SystemExit) as stop:
            experiment.main(argv)
        assert stop.value.code == 2 and "Traceback" not in capsys.readouterr().err


def test_file_errors_of_the_machine_are_one_line_and_debug_shows_the_traceback(capsys, tmp_path):
    @command_line
    def write_into(argv):
        (tmp_path / "missing" / "run.json").write_text("{}")

    with pytest.raises(SystemExit):
        write_into([])
    assert capsys.readouterr().err.startswith("error: No such file or directory: ")
    with pytest.raises(FileNotFoundError):
        write_into(["--debug"])


def test_bugs_keep_their_traceback():
    @command_line
    def buggy(argv):
        return {}["missing"]

    with pytest.raises(KeyError):
        buggy([])


def test_results_main_names_a_damaged_record(capsys, monkeypatch, tmp_path):
    folder = tmp_path / "results" / "music" / "x"
    write_run(folder, {"id": "x"}, [])
    (folder / "run.json").write_text("{")
    with pytest.raises(SystemExit):
        results.main(["--results", str(tmp_path / "results")])
    assert "x/run.json is not valid JSON" in capsys.readouterr().err


# --- the runner deletes only what it rebuilds -----------------------------------------------

def test_a_full_batch_replaces_the_books_pages_and_nothing_else(tmp_path, monkeypatch):
    keep, stale = tmp_path / "notes.ipynb", tmp_path / "model.ipynb"
    for path in (keep, stale, tmp_path / "failed" / "mine.ipynb"):
        path.parent.mkdir(exist_ok=True)
        path.write_text("{}")
    ran = []

    def fake_execute(page, profile, out_dir):
        ran.append(page.name)
        return write_atomic(out_dir / f"{page.name}.ipynb", "new")
    monkeypatch.setattr(runner, "execute_page", fake_execute)
    runner.run_batch("smoke", "cpu", out_dir=tmp_path, runs_dir=tmp_path / "runs")
    assert "model" in ran and stale.read_text() == "new"
    assert keep.read_text() == "{}" and (tmp_path / "failed" / "mine.ipynb").exists()


def test_dataclass_configs_round_trip_only_valid_values():
    cfg = preset("music")
    with pytest.raises(ConfigError):
        dataclasses.replace(cfg, lr_decay=0.5)


def test_a_page_says_when_a_record_is_not_the_papers_settings():
    from srnn.book.pages import run_summary
    base = {"id": "timit-smooth-resq", "profile": "paper", "epochs": 3, "hardware": {"device": "cpu: x86_64"},
            "wall_time_s": 60.0, "best_epoch": 3, "still_improving": True, "command": "python -m srnn.experiment"}
    assert "Not the paper's settings** (preset 'tiny')" in run_summary({**base, "config": preset("tiny").to_dict()})
    assert "Not the paper's" not in run_summary({**base, "config": preset("timit").to_dict()})
    assert "(epochs=3)" in run_summary({**base, "config": preset("timit", epochs=3).to_dict()})


def test_a_multi_line_message_is_printed_as_one_line(capsys):
    from srnn.datasets.registry import DataError

    @command_line
    def offline(argv):
        raise DataError("could not get the data file 'x'.\n  https://a: download failed\nIf you have this file ...")

    with pytest.raises(SystemExit):
        offline([])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: could not get the data file 'x'.   https://a")


def test_a_download_says_where_it_waits(tmp_path, monkeypatch, capsys):
    from srnn.datasets import registry
    monkeypatch.setattr(registry, "_download", lambda url, entry, path, timeout: "download failed (timed out)")
    with pytest.raises(registry.DataError):
        registry.fetch("nottingham_raw_batchsize16_seqlen100.npz", cache=tmp_path)
    assert "(waiting up to 60 s for an answer)" in capsys.readouterr().err


def test_the_commands_examples_use_only_real_options_and_fields():
    """The examples in `python -m srnn.experiment --help` (its docstring) parse, and every
    FIELD=VALUE they set is a config field with a valid value."""
    examples = [line.split()[3:] for line in experiment.__doc__.splitlines() if "python -m srnn.experiment" in line]
    assert len(examples) >= 3
    for argv in examples:
        fields = argv[argv.index("--set") + 1:] if "--set" in argv else []
        preset("music", **{k: json.loads(v) for k, v in (f.split("=") for f in fields)})
        assert not any(a.startswith("--epochs") for a in argv)


# --- records say only what happened; errors name the thing -------------------------------

def test_a_deleted_cut_checkpoint_retrains_and_its_start_says_so(tmp_path):
    cfg, data = toy_data()
    run(cfg, data, tmp_path)
    last = tmp_path / "runs" / "toy-smooth-resq" / "last.pt"
    last.write_bytes(last.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match=r"last.pt cannot be read .* delete it and run the same command again: "
                                              r"the run then trains again from its first epoch"):
        run(cfg, data, tmp_path)
    last.unlink()                                                        # as the error advises
    record = run(cfg, data, tmp_path)
    assert [s["epochs_done"] for s in record["starts"]] == [0, 0]        # the cut start never began
    assert read_json(tmp_path / "runs" / "toy-smooth-resq" / "starts.json")[-1]["epochs_done"] == 0


def test_absurd_sizes_are_one_line_naming_them(capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        experiment.main(["music", "--dataset", "jsb", "--set", "d_dim=1000000", "--profile", "smoke",
                         "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and "d_dim=1000000" in err and "choose smaller sizes" in err


def test_a_batch_that_torchrun_processes_cannot_share_is_refused_first(capsys, monkeypatch, tmp_path):
    import torch.distributed as dist

    monkeypatch.setattr(dist, "init_process_group", lambda *a, **k: pytest.fail("joined the group first"))
    argv = ["music", "--dataset", "jsb", "--set", "batch_size=3", "--profile", "smoke", "--runs", str(tmp_path)]
    for local_rank, says in (("0", True), ("1", False)):             # one line per node, from its first process
        monkeypatch.setenv("RANK", local_rank)
        monkeypatch.setenv("LOCAL_RANK", local_rank)
        monkeypatch.setenv("WORLD_SIZE", "2")
        with pytest.raises(SystemExit) as stop:
            experiment.main(argv)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.count("\n") == int(says)
        assert ("error: batch_size=3 does not split over 2 processes" in err) == says


@pytest.mark.parametrize("twice", [False, True])
def test_ctrl_c_while_a_command_starts_is_one_line(tmp_path, twice):
    import signal
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "srnn.experiment", "music", "--dataset", "jsb", "--profile", "smoke",
               "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results")]
    started = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"},
                               # as from a terminal, even where this suite runs in the background (a shell
                               # starts background jobs with Ctrl-C ignored, and children inherit that)
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(0.3)                                                  # importing torch
    started.send_signal(signal.SIGINT)
    if twice:
        time.sleep(0.05)
        started.send_signal(signal.SIGINT)
    _, err = started.communicate(timeout=120)
    assert started.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines() == ["interrupted: run the same command again to resume from the last checkpoint"]


def test_an_os_error_without_a_file_still_reads_as_one_sentence():
    import errno

    from srnn.errors import describe
    from srnn.files import named
    bare = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert describe(bare) == "No space left on device; free some space and run the command again (it resumes)"
    assert describe(named(bare, "runs/x/last.pt")).startswith("No space left on device: runs/x/last.pt; free")
