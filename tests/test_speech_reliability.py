"""Speech preparation under misuse: changed sources, other paths to one corpus, damaged prepared
files, two preparations at once, failed preparations, files the mono mix silences, and
the command line's one-line errors."""
import os
import re
import shutil
import threading
import time

import numpy as np
import pytest
import soundfile as sf
from test_speech import make_long_folder, make_timit, manifest, speech_like

import srnn.datasets.speech_prepare as speech_prepare
from srnn.datasets.audio import AudioError
from srnn.datasets.speech import PreparationError, load_prepared, prepare_blizzard, prepare_folder, prepare_timit
from srnn.errors import UserError, describe
from srnn.speech import main

quiet = pytest.mark.filterwarnings("ignore::UserWarning")     # warnings are tested on their own below


def make_wav_folder(root, seconds=(2.5, 2.5, 2.5)):
    """Three 16 kHz 16-bit WAV recordings: the smallest folder corpus with 2 s to train on."""
    root.mkdir(parents=True)
    for i, s in enumerate(seconds):
        sf.write(root / f"r{i}.wav", speech_like(int(s * 16000)), 16000, subtype="PCM_16")
    return root


def count_hashing(monkeypatch):
    hashed = []
    real = speech_prepare.sha256_of
    monkeypatch.setattr(speech_prepare, "sha256_of", lambda path: hashed.append(path.name) or real(path))
    return hashed


@quiet
def test_a_source_changed_in_content_only_is_prepared_again(tmp_path, monkeypatch):
    root = make_wav_folder(tmp_path / "corpus")
    first = prepare_folder(root, tmp_path / "out")
    wav = root / "r0.wav"
    before = wav.stat()
    samples, rate = sf.read(wav)
    sf.write(wav, 0.1 * samples, rate, subtype="PCM_16")                   # turned down, same size
    os.utime(wav, ns=(before.st_atime_ns, before.st_mtime_ns))             # and the old mtime
    assert (wav.stat().st_size, wav.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    hashed = count_hashing(monkeypatch)
    second = prepare_folder(root, tmp_path / "out")
    assert second != first and hashed[0] == "r0.wav" and len(hashed) == 1 + 3   # + the 3 split files
    entry = [r for s in manifest(second)["splits"].values() for r in s["recordings"] if r["path"] == "r0.wav"]
    assert entry[0]["sha256"] == speech_prepare.sha256_of(wav)
    hashed.clear()
    assert prepare_folder(root, tmp_path / "out") == second and hashed == []    # unchanged: nothing reread


@quiet
def test_the_same_recordings_reached_another_way_share_one_folder(tmp_path, monkeypatch):
    make_timit(tmp_path / "timit" / "TIMIT")
    make_long_folder(tmp_path / "books" / "blizzard")
    timit = prepare_timit(tmp_path / "timit" / "TIMIT", tmp_path / "out", skip_bad=True)
    blizzard = prepare_blizzard(tmp_path / "books" / "blizzard", tmp_path / "out")
    shutil.copytree(tmp_path / "books", tmp_path / "copy")
    monkeypatch.setattr(speech_prepare, "read_audio", None)              # nothing may be decoded again
    assert prepare_timit(tmp_path / "timit", tmp_path / "out", skip_bad=True) == timit        # a folder higher
    assert prepare_blizzard(tmp_path / "books", tmp_path / "out") == blizzard
    assert prepare_blizzard(tmp_path / "copy" / "blizzard", tmp_path / "out") == blizzard      # a copy
    assert len([p for p in (tmp_path / "out").iterdir() if p.is_dir()]) == 2


@quiet
def test_a_split_file_changed_after_preparation_stops_the_run(tmp_path, monkeypatch):
    path = prepare_folder(make_wav_folder(tmp_path / "corpus"), tmp_path / "out")
    load_prepared(path, batch_size=1)
    hashed = count_hashing(monkeypatch)
    load_prepared(path, batch_size=1)
    assert hashed == []                                                  # verified files are not reread
    train = path / "train.i16"
    before = train.stat()
    time.sleep(0.05)             # file times tick every few ms: change it in a later tick than it was hashed
    train.write_bytes(np.random.default_rng(0).bytes(before.st_size))   # garbage of the same size
    os.utime(train, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(PreparationError, match=r"train\.i16 has sha256 .* manifest says .* prepare again"):
        load_prepared(path, batch_size=1)                                # what a run start calls
    assert hashed == ["train.i16"]
    load_prepared(path, batch_size=1, verify=False)


@quiet
def test_two_preparations_of_one_folder_take_turns(tmp_path, monkeypatch, capsys):
    root = make_long_folder(tmp_path / "corpus")
    real, decoded, started, go = speech_prepare.read_audio, [], threading.Event(), threading.Event()

    def slow_first_file(path, *args):
        decoded.append(path)
        if len(decoded) == 1:
            started.set()
            go.wait(60)
        return real(path, *args)
    monkeypatch.setattr(speech_prepare, "read_audio", slow_first_file)
    results = {}

    def run(name):
        try:
            results[name] = prepare_folder(root, tmp_path / "out")
        except Exception as e:          # reported by the asserts below
            results[name] = e
    first = threading.Thread(target=run, args=("first",))
    first.start()
    assert started.wait(60)
    second = threading.Thread(target=run, args=("second",))
    second.start()
    err, deadline = "", time.monotonic() + 20
    while "waiting for another process busy with a preparation" not in err and time.monotonic() < deadline:
        time.sleep(0.05)
        err += capsys.readouterr().err
    go.set()
    first.join(60)
    second.join(60)
    assert "waiting for another process busy with a preparation" in err and ".lock" in err
    assert results["first"] == results["second"] and (results["first"] / "manifest.json").is_file()
    assert len(decoded) == 4                                             # the second decoded nothing


@quiet
def test_a_preparation_stopped_by_a_bad_file_leaves_nothing_and_reruns_once_fixed(tmp_path):
    root = make_wav_folder(tmp_path / "corpus", (2.5, 2.5, 2.5, 2.5))
    (root / "r2.wav").write_bytes(b"RIFF not really")
    with pytest.raises(AudioError, match=r"r2\.wav.*pass --skip-bad \(skip_bad=True in Python\)"):
        prepare_folder(root, tmp_path / "out")
    assert [p for p in (tmp_path / "out").iterdir() if p.is_dir()] == []
    skipped = prepare_folder(root, tmp_path / "out", skip_bad=True)
    assert [s["path"] for s in manifest(skipped)["skipped"]] == ["r2.wav"]
    sf.write(root / "r2.wav", speech_like(40000), 16000)                 # fixed
    fixed = prepare_folder(root, tmp_path / "out")
    assert fixed != skipped and manifest(fixed)["skipped"] == []


def make_awkward_folder(root):
    """Three plain recordings and one each: (nearly) anti-phase stereo, clipped, 44.1 kHz, unreadable."""
    make_wav_folder(root)
    wave = speech_like(32000)
    sf.write(root / "antiphase.wav", np.stack([wave, -0.99 * wave], 1), 16000, subtype="PCM_16")   # exact: silent
    sf.write(root / "loud.wav", 3 * wave, 16000, subtype="FLOAT")
    sf.write(root / "cd.flac", speech_like(2 * 44100, 44100), 44100)
    (root / "broken.wav").write_bytes(b"RIFF not really")
    return root


def test_preparation_warns_about_what_it_did_to_files(tmp_path):
    root = make_awkward_folder(tmp_path / "corpus")
    with pytest.warns(UserWarning) as record:
        path = prepare_folder(root, tmp_path / "out", skip_bad=True)
    messages = [str(w.message) for w in record]
    for pattern in (r"1 stereo file\(s\) nearly silent .* antiphase\.wav", r"1 file\(s\) resampled .* cd\.flac",
                    r"1 file\(s\) with samples clipped .* loud\.wav",
                    r"1 unreadable or damaged file\(s\) .* broken\.wav"):
        assert sum(bool(re.search(pattern, m)) for m in messages) == 1, (pattern, messages)
    m = manifest(path)
    assert [r["path"] for r in m["cancelled"]] == ["antiphase.wav"] and m["cancelled"][0]["mix_rms_ratio"] < 0.01
    assert [r["path"] for r in m["downmixed"]] == ["antiphase.wav"]
    assert [r["path"] for r in m["clipped"]] == ["loud.wav"]


@quiet
def test_a_cut_manifest_is_one_line_naming_it(tmp_path):
    path = prepare_folder(make_wav_folder(tmp_path / "corpus"), tmp_path / "out")
    text = (path / "manifest.json").read_text()
    (path / "manifest.json").write_text(text[:len(text) // 2])
    with pytest.raises(UserError) as err:
        load_prepared(path, batch_size=1)
    assert "manifest.json" in str(err.value) and f"delete {path} and prepare again" in str(err.value)
    assert "\n" not in describe(err.value)


def test_command_line_errors_and_warnings_are_one_line_each(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("no audio here")
    (tmp_path / "file.wav").write_bytes(b"")
    for source, says in [("nowhere", "does not exist"), ("empty", "holds no files"),
                         ("texts", "holds no audio files"), ("file.wav", "is not a folder")]:
        with pytest.raises(SystemExit) as stop:
            main(["folder", str(tmp_path / source), "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.startswith(f"error: folder corpus folder {tmp_path / source} {says}")
        assert err.count("\n") == 1
    root = make_awkward_folder(tmp_path / "corpus")
    with pytest.raises(SystemExit) as stop:
        main(["folder", str(root), "--out", str(tmp_path / "out")])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert stop.value.code == 2 and len(errors) == 1 and "broken.wav" in errors[0] and "--skip-bad" in errors[0]
    assert main(["folder", str(root), "--out", str(tmp_path / "out"), "--skip-bad"]) == 0
    out = capsys.readouterr()
    warnings = [line for line in out.err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 4 and "--skip-bad" in warnings[0]
    assert (tmp_path / "out" / out.out.strip().split("/")[-1] / "manifest.json").is_file()


def make_corpus_with_bad_audio(root):
    """Five good recordings in a folder with one of each file that is not audio it can use: a float
    WAV of NaN samples, a WAV with a header and no samples, a file of zero bytes and digital silence."""
    make_wav_folder(root, (2.5,) * 5)
    for i, name in enumerate(["r0", "r1", "r2", "r3", "r4"]):
        (root / f"r{i}.wav").rename(root / f"{name}.wav")
    sf.write(root / "a_nan.wav", np.full(16000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    sf.write(root / "b_empty.wav", np.zeros(0, dtype=np.float32), 16000, subtype="PCM_16")
    (root / "c_zero.wav").write_bytes(b"")
    sf.write(root / "d_silent.wav", np.zeros(32000, dtype=np.float32), 16000, subtype="PCM_16")
    return root


def test_audio_that_is_not_audio_is_refused_by_name_or_left_out_and_listed(tmp_path, capsys):
    root = make_corpus_with_bad_audio(tmp_path / "corpus")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stop:                       # damaged files stop it, by name
        main(["folder", str(root), "--out", str(out)])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert stop.value.code == 2 and len(errors) == 1
    assert "a_nan.wav holds 16000 NaN or infinite sample(s)" in errors[0] and "--skip-bad" in errors[0]
    assert main(["folder", str(root), "--out", str(out), "--skip-bad"]) == 0
    printed = capsys.readouterr()
    warned = [line for line in printed.err.splitlines() if line.startswith("warning: ")]
    for kind, names in [("skipped", ["a_nan.wav", "c_zero.wav"]), ("too_short", ["b_empty.wav"]),
                        ("silent", ["d_silent.wav"])]:
        assert any(all(n in line for n in names) and f"'{kind}'" in line for line in warned), (kind, warned)
    m = manifest(out / printed.out.strip().split("/")[-1])
    assert [e["path"] for e in m["skipped"]] == ["a_nan.wav", "c_zero.wav"]
    assert [e["path"] for e in m["too_short"]] == ["b_empty.wav"] and m["too_short"][0]["samples"] == 0
    assert [e["path"] for e in m["silent"]] == ["d_silent.wav"]
    kept = [r["path"] for split in m["splits"].values() for r in split["recordings"]]
    assert sorted(kept) == [f"r{i}.wav" for i in range(5)]          # nothing became silence in the data


def test_empty_and_silent_files_never_fail_the_corpus(tmp_path, capsys):
    root = make_corpus_with_bad_audio(tmp_path / "corpus")
    (root / "a_nan.wav").unlink()
    (root / "c_zero.wav").unlink()
    assert main(["folder", str(root), "--out", str(tmp_path / "out")]) == 0      # without --skip-bad
    err = capsys.readouterr().err
    assert "b_empty.wav" in err and "d_silent.wav" in err and "error" not in err


def test_a_zero_length_wav_never_empties_a_split_and_a_silent_one_is_named(tmp_path, capsys):
    from srnn.datasets.speech_corpora import folder
    root = make_wav_folder(tmp_path / "corpus", (2.5,) * 4)
    valid = next(r.path for r in folder(root).recordings if r.split == "valid")
    sf.write(root / valid, np.zeros(0, dtype=np.float32), 16000, subtype="PCM_16")   # a zero-length WAV there
    assert main(["folder", str(root), "--out", str(tmp_path / "out")]) == 0          # another file is drawn
    m = manifest(tmp_path / "out" / capsys.readouterr().out.strip().split("/")[-1])
    assert [e["path"] for e in m["too_short"]] == [valid] and m["splits"]["valid"]["recordings"]
    sf.write(root / valid, np.zeros(32000, dtype=np.float32), 16000, subtype="PCM_16")   # silence: known on reading
    with pytest.raises(PreparationError) as err:
        prepare_folder(root, tmp_path / "out")
    message = describe(err.value)
    assert f"the valid split of {root} is empty" in message and valid in message and "log" not in message


@quiet
def test_a_corpus_smaller_than_one_batch_is_one_line_in_training_and_is_evaluated(tmp_path, capsys):
    import torch

    from srnn import cli, experiment
    from srnn.config import preset
    from srnn.models.baselines import build_model
    from srnn.training.checkpoint import save_checkpoint
    path = prepare_folder(make_wav_folder(tmp_path / "corpus", (2.5, 2.5, 2.5, 2.5)), tmp_path / "out")
    chunks = manifest(path)["splits"]["train"]["chunks"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        experiment.main(["speech", "--prepared", str(path), "--set", "batch_size=64", "--profile", "smoke",
                         "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results")])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert stop.value.code == 2 and len(errors) == 1
    assert f"{path} has {chunks} training chunk(s)" in errors[0] and f"--set batch_size={chunks}" in errors[0]
    cfg = preset("speech_small", d_dim=8, z_dim=4, mlp_dim=8, batch_size=64)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "model.pt", {"config": cfg.to_dict(), "model": build_model(cfg).state_dict()})
    assert cli.main(["evaluate", "--checkpoint", str(tmp_path / "model.pt"), "speech", "--prepared", str(path)]) == 0
    assert "test: ELBO per step" in capsys.readouterr().out
