"""The srnn command: its help lists every command and setting, and its examples run."""
import shlex

import pytest

from srnn import cli, experiment, runner
from srnn.config import field_help
from srnn.errors import UserError


def run(capsys, *argv):
    code = cli.main(list(argv))
    return code, capsys.readouterr()


def test_the_overview_names_every_command(capsys):
    code, out = run(capsys, "--help")
    assert code == 0
    for command in [*cli.DELEGATED, *cli.OWN]:
        assert f"  {command} " in out.out


@pytest.mark.parametrize("command", [*cli.DELEGATED, *cli.OWN])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([command, "--help"])
    assert stop.value.code == 0 and f"usage: srnn {command}" in capsys.readouterr().out


def test_train_help_and_settings_list_every_setting_with_its_default(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    train_help = capsys.readouterr().out
    _, settings = run(capsys, "settings")
    for name, (_, meaning) in field_help().items():
        assert meaning, f"config field {name} has no comment to explain it"
        if name != "name":
            for text in (train_help, settings.out):
                assert f"  {name} " in text and meaning[:30] in text


def examples():
    return [shlex.split(line.split("#")[0])[1:] for line in cli.__doc__.splitlines()
            if line.strip().startswith("srnn ")]


def test_the_examples_run(capsys, tmp_path, monkeypatch):
    """Each example of `srnn --help`, from a fresh folder; training and the book are only
    started (their work is replaced by a stub that records what it was asked)."""
    monkeypatch.chdir(tmp_path)
    asked = []
    test = {"elbo_per_step_seq": 0.0, "elbo_per_step": 0.0, "iwae_per_step_seq": 0.0, "paths": 10}
    monkeypatch.setattr(experiment, "run_experiment", lambda cfg, data, run_id, *a, **k: asked.append(run_id) or
                        {"id": run_id, "warnings": [], "test": test})
    monkeypatch.setattr(runner, "run_batch", lambda *a, **k: asked.append("book") or {})
    assert len(examples()) == 7
    for argv in examples():
        assert cli.main(argv) == 0, argv
    assert asked == ["jsb-npz-smooth-resq", "book"]
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        "rolls.npz", "sample1.mid", "sample1.wav", "sample2.mid", "sample3.mid", "sample4.mid"]


def test_generate_continues_a_test_piece(tmp_path, capsys):
    import numpy as np

    from srnn.datasets.music import pieces
    cli.main(["generate", "--pretrained", "jsb", "--out", str(tmp_path), "--pieces", "2", "--steps", "8",
              "--continue-piece", "3", "--prefix-steps", "5"])
    rolls = np.load(tmp_path / "rolls.npz")["rolls"]
    assert rolls.shape == (2, 13, 88)
    assert (rolls[:, :5] == pieces("jsb", "npz", "test")[3][:5]).all()


@pytest.mark.parametrize("argv, message", [
    (["nope"], "error: unknown command 'nope'"),
    (["generate", "--pretrained", "jsb", "--out", "x", "--pieces", "0"], "error: --pieces, --steps"),
    (["generate", "--pretrained", "jsb", "--out", "x", "--continue-piece", "999"], "the jsb test set has pieces"),
    (["evaluate", "--pretrained", "jsb", "music", "--paths", "0"], "error: --iwae-samples and --paths must be"),
    (["evaluate", "--pretrained", "bach", "music", "--dataset", "jsb"], "error: no pretrained model 'bach'"),
])
def test_command_errors_are_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and err.count("\n") == 1


def test_evaluate_gives_a_released_models_record_computation_and_its_number(tmp_path, monkeypatch, capsys):
    from srnn.pretrained import exact_available, released
    model = released()["jsb"]
    if exact_available(model):                                # the float32 copy: the record, digit for digit
        assert cli.main(["evaluate", "--pretrained", "jsb", "music"]) == 0
        assert f"float32 copy: the record says {model.record_test:.6f} (the same to the last digit)" in \
            capsys.readouterr().out
    monkeypatch.setenv("SRNN_CACHE", str(tmp_path))           # the package's 8-bit copy: the card's gap
    assert cli.main(["evaluate", "--pretrained", "jsb", "music"]) == 0       # its own data set, seed and paths
    out = capsys.readouterr().out
    gap = model.shipped_test - model.record_test
    assert f"{model.paths} sample path(s), seed {model.seed}" in out
    assert f"8-bit copy: the record says {model.record_test:.6f} (this copy {gap:+.6f} from it); the shipped " \
           f"8-bit copy {model.shipped_test:.6f}" in out


def test_generate_replaces_an_earlier_commands_folder_whole(tmp_path, capsys):
    out = tmp_path / "samples"
    assert cli.main(["generate", "--pretrained", "jsb", "--out", str(out), "--pieces", "6", "--steps", "4"]) == 0
    assert cli.main(["generate", "--pretrained", "jsb", "--out", str(out), "--pieces", "2", "--steps", "4",
                     "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["rolls.npz", "sample1.mid", "sample1.wav", "sample2.mid"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples"]           # no temporary folder left
    printed = capsys.readouterr().out.split()
    assert printed[-4:] == [str(out / n) for n in ("rolls.npz", "sample1.mid", "sample2.mid", "sample1.wav")]


def test_generate_refuses_a_folder_holding_other_files(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as stop:
        cli.main(["generate", "--pretrained", "jsb", "--out", str(tmp_path), "--pieces", "1", "--steps", "4"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1
    assert f"--out {tmp_path} holds files that srnn generate did not write (notes.txt)" in err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_file_that_is_not_a_checkpoint_is_refused_without_unsafe_advice(tmp_path, capsys):
    import pickle

    files = {"text.pt": b"not a checkpoint", "objects.pt": pickle.dumps({"weights": {1, 2}}),
             "empty.pt": b""}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(SystemExit) as stop:
            cli.main(["evaluate", "--checkpoint", str(tmp_path / name), "music", "--dataset", "jsb"])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.count("\n") == 1 and str(tmp_path / name) in err
        assert "weights_only" not in err and "delete" not in err and "trust" not in err
        assert "give the last.pt or best.pt of a run that srnn trained" in err
        assert (tmp_path / name).read_bytes() == content


def test_a_full_disk_names_the_file(tmp_path, capsys, monkeypatch):
    import errno
    import os

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))      # as a write finds it: no file named
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(SystemExit) as stop:
        cli.main(["prepare", "sample", "--out", str(tmp_path / "data")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert stop.value.code == 2 and len(err) == 1
    assert err[0].startswith(f"error: No space left on device: {tmp_path / 'data'}/sample-")
    assert "free some space" in err[0]


def test_settings_shows_a_presets_values_and_answers_help(capsys):
    from srnn.config import preset
    code, out = run(capsys, "settings", "--preset", "music")
    assert code == 0 and "settings of the preset 'music'" in out.out
    music = preset("music")
    for name in ("d_dim", "batch_size", "lr_decay_start"):
        line = next(line for line in out.out.splitlines() if line.startswith(f"  {name} "))
        assert str(getattr(music, name)) in line and " * " in line
    with pytest.raises(SystemExit) as stop:
        cli.main(["settings", "--help"])
    assert stop.value.code == 0 and "--preset NAME" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        cli.main(["settings", "--preset", "nope"])
    assert stop.value.code == 2


@pytest.mark.parametrize("command", ["evaluate", "generate", "settings", "results", "book", "prepare"])
def test_every_argument_has_help(command, monkeypatch):
    from srnn import errors
    parsers = []

    def caught(self, *args, **kwargs):
        parsers.append(self)
        raise SystemExit(0)

    monkeypatch.setattr(errors.ArgumentParser, "parse_args", caught)
    with pytest.raises(SystemExit):
        cli.main([command])
    bare = [action.dest for action in parsers[0]._actions if not action.help]
    assert not bare, f"srnn {command}: arguments without help: {bare}"


def test_generate_never_overwrites_without_being_asked(tmp_path, capsys):
    out = tmp_path / "chorales"
    argv = ["generate", "--pretrained", "jsb", "--out", str(out), "--pieces", "1", "--steps", "4"]
    assert cli.main(argv) == 0
    before = (out / "rolls.npz").read_bytes()
    with pytest.raises(SystemExit) as stop:
        cli.main(argv + ["--seed", "1"])
    assert stop.value.code == 2 and "already holds files" in capsys.readouterr().err
    assert (out / "rolls.npz").read_bytes() == before
    assert cli.main(argv + ["--seed", "1", "--overwrite"]) == 0


def test_results_reads_the_given_folder_or_says_where_it_looked(tmp_path, monkeypatch, capsys):
    from srnn import results
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        results.main(["--results", str(tmp_path / "empty")])
    assert stop.value.code == 2 and f"no run record (<domain>/<id>/run.json) in {tmp_path / 'empty'}" in \
        capsys.readouterr().err
    with pytest.raises(UserError, match="no run record .* in .*here.* or .*clone"):
        results.records_folder(None, here=tmp_path / "here", clone=tmp_path / "clone")
    assert results.records_folder(None, here=tmp_path / "nothing") == results.CLONE_RESULTS


def test_the_book_command_needs_a_clone_and_says_so(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(runner, "BOOK", tmp_path / "book")
    with pytest.raises(SystemExit) as stop:
        cli.main(["book", "--profile", "smoke"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "the book needs a clone of the repository" in err and err.count("\n") == 1


def test_the_readmes_commands_agree_with_the_code():
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    outs = [line.split("--out")[1].split()[0] for line in readme.splitlines() if "srnn generate" in line]
    assert len(outs) == 2 and len(set(outs)) == 2, "the README's generate examples must write to different folders"
    import ast
    tree = ast.parse((root / "scripts" / "mutations.py").read_text())
    mutants = next(len(n.value.elts) for n in tree.body if isinstance(n, ast.Assign)
                   and getattr(n.targets[0], "id", "") == "MUTANTS")
    assert f"in {mutants} small ways" in readme, f"the README must count the {mutants} mutants of scripts/mutations.py"
    assert "torch==2.13.0" in readme and "torch==2.13.0" in (root / "constraints.txt").read_text()
