"""srnn.datasets.speech and the srnn.speech command: corpora, preparation on disk, and the
prepared data set (supplementary 1.1)."""
import hashlib
import json

import numpy as np
import pytest
import soundfile as sf
import torch

import srnn.datasets.speech_prepare as speech_prepare
from srnn.config import preset
from srnn.datasets.audio import AudioError
from srnn.datasets.batching import ChunkBatches
from srnn.datasets.speech import (
    PreparationError,
    load_prepared,
    prepare_blizzard,
    prepare_folder,
    prepare_sample,
    prepare_timit,
)
from srnn.datasets.speech_corpora import SAMPLE_DIR, CorpusError, timit
from srnn.models.model import SRNN
from srnn.speech import main
from srnn.training.evaluate import evaluate

RNG = np.random.default_rng(0)
TIMIT_SPEAKERS = {"TRAIN/DR1": ["FCJF0", "MDAB0"], "TRAIN/DR2": ["FAEM0", "MARC0"],
                  "TEST/DR1": ["FAKS0"], "TEST/DR2": ["MBJK0"]}
UTTERANCES = ["SA1", "SA2", "SI648", "SX38", "SX128"]


def speech_like(samples, rate=16000):
    t = np.arange(samples) / rate
    return (0.2 * np.sin(2 * np.pi * 220 * t) + 0.05 * RNG.standard_normal(samples)).astype(np.float32)


def make_timit(root, lowercase=False):
    """The LDC layout with SPHERE files; speaker MARC0 as a lowercase copy, a converted
    .WAV.wav beside one original, transcripts, one corrupt file and one too short."""
    for region, speakers in TIMIT_SPEAKERS.items():
        for speaker in speakers:
            split, dr = region.split("/")
            folder = root / split / dr / speaker
            if lowercase or speaker == "MARC0":
                folder = root / (split.lower() if lowercase else split) / dr.lower() / speaker.lower()
            folder.mkdir(parents=True)
            for utt in UTTERANCES:
                name = (utt.lower() + ".wav") if lowercase or speaker == "MARC0" else utt + ".WAV"
                sf.write(folder / name, speech_like(int(RNG.integers(6000, 14000))), 16000,
                         format="NIST", subtype="PCM_16")
                (folder / name.replace("WAV", "PHN").replace("wav", "phn")).write_text("0 2000 h#\n")
    if not lowercase:
        sa1 = root / "TRAIN/DR1/FCJF0/SA1.WAV"
        sf.write(root / "TRAIN/DR1/FCJF0/SA1.WAV.wav", sf.read(sa1)[0], 16000)
        (root / "TRAIN/DR1/MDAB0/SI648.WAV").write_bytes(b"NIST_1A\n   1024\nbroken")
        sf.write(root / "TEST/DR2/MBJK0/SX99.WAV", speech_like(150), 16000, format="NIST")
    return root


def make_long_folder(root):
    """Blizzard-like: long recordings (seconds here) at 44.1 kHz, mp3 and flac, one stereo."""
    root.mkdir(parents=True)
    sf.write(root / "ch01.mp3", np.stack([speech_like(3 * 44100, 44100)] * 2, 1), 44100, format="MP3")
    sf.write(root / "ch02.flac", speech_like(3 * 44100, 44100), 44100)
    sf.write(root / "ch03.flac", speech_like(int(2.5 * 44100), 44100), 44100)
    (root / "book2").mkdir()
    sf.write(root / "book2" / "ch04.flac", speech_like(int(3.2 * 44100), 44100), 44100)
    return root


def manifest(path):
    return json.loads((path / "manifest.json").read_text())


def groups(windows):
    """Concatenate the windows of each reset group: [(x, u, mask)]."""
    out = []
    for b in windows:
        if b.reset:
            out.append([[b.x], [b.u], [b.mask]])
        else:
            for part, t in zip(out[-1], (b.x, b.u, b.mask)):
                part.append(t)
    return [tuple(torch.cat(p, 1) for p in g) for g in out]


def test_embedded_sample_end_to_end(tmp_path):
    sums = (SAMPLE_DIR.parent / "SHA256SUMS").read_text().split("\n")
    for line in filter(None, sums):
        digest, name = line.split()
        assert hashlib.sha256((SAMPLE_DIR.parent / name).read_bytes()).hexdigest() == digest
    path = prepare_sample(tmp_path)
    data = load_prepared(path, batch_size=16, window=40)
    assert data.train.x.shape[1:] == (160, 200) and data.samples_per_step == 200
    assert len(data.train) == 4 * (data.train.x.shape[0] // 16)
    first = list(data.train.batches(0))[:4]
    assert [b.reset for b in first] == [True, False, False, False]
    assert all(b.x.shape == (16, 40, 200) for b in first)
    x = (np.asarray(data.train.x, dtype=np.float64) - data.train.mean) / data.train.std
    assert abs(x.mean()) < 0.01 and abs(x.std() - 1) < 0.01
    assert data.sequence_unit == "0.5 s" and data.test.num_sequences > 10
    # a 0.5 s piece is scored whole: all 40 frames in one pass, the first from u_1 = 0
    assert all(b.reset and b.x.shape[1:] == (40, 200) and not b.u[:, 0].any() for b in data.test)
    assert all(torch.equal(b.u[:, 1:], b.x[:, :-1]) and b.mask.all() for b in data.test)
    assert data.test.num_steps == 40 * data.test.num_sequences
    windows = load_prepared(path, batch_size=16, window=40, test_pass="windows").test
    assert all(b.reset and b.x.shape[1:] == (40, 200) for b in windows)
    shorter = load_prepared(path, batch_size=16, window=20).test              # the piece, whatever the window
    assert all(b.x.shape[1:] == (40, 200) for b in shorter)
    assert all(b.reset for b in data.valid)
    m = manifest(path)
    assert sum(len(s["recordings"]) for s in m["splits"].values()) == 50
    assert data.fingerprint["splits"]["train"] == m["splits"]["train"]["sha256"]
    wavs = data.write_samples(SRNN(preset("tiny", x_dim=200)), tmp_path / "samples", count=2, seconds=0.5)
    assert [sf.info(w).frames for w in wavs] == [8000, 8000] and sf.info(wavs[0]).samplerate == 16000


def test_timit_layout_corrupt_duplicate_lowercase_and_whole_utterances(tmp_path):
    root = make_timit(tmp_path / "timit")
    with pytest.warns(UserWarning, match="full corpus has 4620"):
        with pytest.raises(AudioError, match=r"TRAIN/DR1/MDAB0/SI648\.WAV"):
            prepare_timit(root, tmp_path / "out", valid_fraction=0.15)
        path = prepare_timit(root, tmp_path / "out", valid_fraction=0.15, skip_bad=True)
    m = manifest(path)
    assert [s["path"] for s in m["skipped"]] == ["TRAIN/DR1/MDAB0/SI648.WAV"]
    assert m["duplicates_left_out"] == ["TRAIN/DR1/FCJF0/SA1.WAV.wav"]
    assert m["too_short"] == [{"path": "TEST/DR2/MBJK0/SX99.WAV", "samples": 150}]
    paths = {s: [r["path"] for r in m["splits"][s]["recordings"]] for s in m["splits"]}
    assert len(paths["train"]) + len(paths["valid"]) == 19 and len(paths["valid"]) in (2, 3)
    assert len(paths["test"]) == 10 and all(p.startswith("TEST/") for p in paths["test"])
    assert "TRAIN/dr2/marc0/sa1.wav" in paths["train"] + paths["valid"]

    pcm = np.memmap(path / "test.i16", dtype=np.int16).reshape(-1, 200)
    utterances = sorted(((r["first_step"], r["steps"]) for r in m["splits"]["test"]["recordings"]),
                        key=lambda s: -s[1])
    model = SRNN(preset("tiny", x_dim=200))

    # The original's test: each utterance in one pass, u = frames[:-1], x = frames[1:].
    data = load_prepared(path, batch_size=4, window=40)
    assert data.sequence_unit == "utterance" and data.test.num_sequences == 10
    assert len(data.test) == 3 and all(b.reset for b in data.test)
    for i, b in enumerate(data.test):
        for row, (first, steps) in enumerate(utterances[4 * i:4 * i + 4]):
            frames = (pcm[first:first + steps] - data.test.mean) / data.test.std
            assert b.mask[row].sum() == steps - 1
            np.testing.assert_allclose(b.x[row, :steps - 1].numpy(), frames[1:], rtol=1e-6, atol=1e-5)
            np.testing.assert_allclose(b.u[row, :steps - 1].numpy(), frames[:-1], rtol=1e-6, atol=1e-5)
    metrics = evaluate(model, data.test)
    assert metrics["sequences"] == 10 and metrics["steps"] == sum(s - 1 for _, s in utterances)
    assert all(b.reset for b in data.valid)                              # every validation window from zero

    # The windowed estimator (always there as test_windows): 40-step windows carrying the
    # state whatever the validation does, every frame scored.
    assert [len(g[0]) for g in groups(data.test_windows)] == [4, 4, 2]
    data = load_prepared(path, batch_size=4, window=40, test_pass="windows")
    assert data.test is data.test_windows and all(b.reset for b in data.valid)
    assert not all(b.reset for b in load_prepared(path, batch_size=4, window=40, valid_state="carry").valid)
    whole = groups(data.test)
    assert [g[0].shape[0] for g in whole] == [4, 4, 2]
    for i, (x, u, mask) in enumerate(whole):
        for row, (first, steps) in enumerate(utterances[4 * i:4 * i + 4]):
            assert mask[row].sum() == steps
            expected = (pcm[first:first + steps] - data.test.mean) / data.test.std
            np.testing.assert_allclose(x[row, :steps].numpy(), expected, rtol=1e-6, atol=1e-5)
        assert torch.equal(u[:, 1:], x[:, :-1]) and not u[:, 0].any()   # u continues across windows
    metrics = evaluate(model, data.test)
    assert metrics["sequences"] == 10 and metrics["steps"] == sum(s for _, s in utterances)


def test_timit_split_is_the_same_for_a_lowercase_copy(tmp_path):
    upper = make_timit(tmp_path / "a")
    make_timit(tmp_path / "b" / "timit", lowercase=True)
    with pytest.warns(UserWarning):
        a = {r.key: r.split for r in timit(upper).recordings if r.key.startswith("TRAIN/")}
        b = {r.key: r.split for r in timit(tmp_path / "b").recordings if r.key.startswith("TRAIN/")}
    assert a == b and sorted(a.values()).count("valid") == 1


def test_blizzard_long_files_resampled_downmixed_and_reused(tmp_path, monkeypatch):
    root = make_long_folder(tmp_path / "blizzard")
    path = prepare_blizzard(root, tmp_path / "out")
    m = manifest(path)
    assert {r["path"] for r in m["resampled"]} == {"ch01.mp3", "ch02.flac", "ch03.flac", "book2/ch04.flac"}
    assert m["downmixed"] == [{"path": "ch01.mp3", "channels": 2}]
    assert [len(m["splits"][s]["recordings"]) for s in ("train", "valid", "test")] == [2, 1, 1]
    data = load_prepared(path, batch_size=2)
    test_steps = m["splits"]["test"]["recordings"][0]["steps"]
    assert data.sequence_unit == "0.5 s" and data.test.num_sequences == test_steps // 40
    assert load_prepared(path, batch_size=2, unit="utterance").test.num_sequences == 1

    def no_decoding(path, *args):
        raise AssertionError(f"decoded {path} again")
    monkeypatch.setattr(speech_prepare, "read_audio", no_decoding)
    assert prepare_blizzard(root, tmp_path / "out") == path
    with pytest.raises(AssertionError):
        prepare_blizzard(root, tmp_path / "out", permute_seed=1)     # other settings, other folder


def test_command_line_prepares_and_reports_the_folder(tmp_path, capsys):
    root = make_long_folder(tmp_path / "corpus")
    main(["folder", str(root), "--out", str(tmp_path / "out"), "--permute-seed", "3"])
    path = tmp_path / "out" / capsys.readouterr().out.strip().split("/")[-1]
    assert manifest(path)["permutation"]["seed"] == 3
    with pytest.raises(SystemExit):
        main(["timit", "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit):
        main(["timit", str(tmp_path / "nowhere")])
    assert "LDC93S1" in capsys.readouterr().err


def test_interrupted_preparation_resumes_without_redoing_work(tmp_path, monkeypatch):
    root = make_long_folder(tmp_path / "corpus")
    clean = prepare_folder(root, tmp_path / "clean")
    calls = []
    real = speech_prepare.read_audio

    def interrupted(path, *args):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(path, *args)
    monkeypatch.setattr(speech_prepare, "read_audio", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_folder(root, tmp_path / "out")
    assert not list((tmp_path / "out").glob("*/manifest.json"))
    for partial in (tmp_path / "out").glob("*/*.i16.partial"):
        with open(partial, "ab") as f:
            f.write(b"half-written frame")                   # as if killed while appending
    calls.clear()
    path = prepare_folder(root, tmp_path / "out")
    assert len(calls) == 2 and not (path / "log").exists()
    assert sorted(p.name for p in path.iterdir()) == ["manifest.json", "sha256-cache.json", "test.i16",
                                                      "train.i16", "valid.i16"]
    assert manifest(path)["splits"] == manifest(clean)["splits"]


def test_preparation_cut_just_before_the_manifest_finishes_on_rerun(tmp_path, monkeypatch):
    root = make_long_folder(tmp_path / "corpus")
    clean = prepare_folder(root, tmp_path / "clean")
    real = speech_prepare.write_json

    def killed_at_manifest(path, value, **dump):
        if path.name == "manifest.json":
            raise KeyboardInterrupt
        return real(path, value, **dump)
    monkeypatch.setattr(speech_prepare, "write_json", killed_at_manifest)
    with pytest.raises(KeyboardInterrupt):
        prepare_folder(root, tmp_path / "out")
    monkeypatch.setattr(speech_prepare, "write_json", real)
    monkeypatch.setattr(speech_prepare, "read_audio", None)     # nothing may be decoded again
    path = prepare_folder(root, tmp_path / "out")
    assert manifest(path)["splits"] == manifest(clean)["splits"]


def test_permutation_within_frames_is_recorded_and_inverted(tmp_path):
    root = make_long_folder(tmp_path / "corpus")
    plain = load_prepared(prepare_folder(root, tmp_path / "out"), batch_size=2)
    permuted = load_prepared(prepare_folder(root, tmp_path / "out", permute_seed=7), batch_size=2)
    order = np.random.default_rng(7).permutation(200)
    assert permuted.manifest["permutation"] == {"seed": 7, "order": order.tolist()}
    assert permuted.name == "folder-perm" and permuted.fingerprint["permute_seed"] == 7
    np.testing.assert_array_equal(np.asarray(permuted.train.x), np.asarray(plain.train.x)[..., order])
    x = (torch.as_tensor(np.array(permuted.train.x[:1]), dtype=torch.float32) - permuted.mean * 32768) \
        / (permuted.std * 32768)
    np.testing.assert_allclose(permuted.waveform(x)[0], np.asarray(plain.train.x[0]).ravel() / 32768,
                               atol=1e-6)


def test_missing_or_wrong_corpora_say_what_to_get(tmp_path):
    with pytest.raises(CorpusError, match=r"(?s)timit.*LDC93S1.*TRAIN/DR1/FCJF0/SA1\.WAV"):
        prepare_timit(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "half" / "TRAIN").mkdir(parents=True)
    with pytest.raises(CorpusError, match="no TRAIN and TEST folders"):
        prepare_timit(tmp_path / "half", tmp_path / "out")
    with pytest.raises(CorpusError, match="Blizzard Challenge 2013"):
        prepare_blizzard(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "two").mkdir()
    for name in ("a.wav", "b.wav"):
        sf.write(tmp_path / "two" / name, speech_like(16000), 16000)
    with pytest.raises(CorpusError, match="needs at least 3"):
        prepare_folder(tmp_path / "two", tmp_path / "out")


def test_damaged_or_unfinished_preparation_is_refused(tmp_path):
    path = prepare_folder(make_long_folder(tmp_path / "corpus"), tmp_path / "out")
    chunks = manifest(path)["splits"]["train"]["chunks"]
    with pytest.raises(PreparationError, match=rf"{chunks} training chunk\(s\) .* --set batch_size={chunks}"):
        load_prepared(path, batch_size=chunks + 1)
    with open(path / "test.i16", "r+b") as f:
        f.truncate(100)
    with pytest.raises(PreparationError, match=r"test\.i16 has 100 bytes.*prepare again"):
        load_prepared(path, batch_size=2)
    with pytest.raises(PreparationError, match="no manifest.json"):
        load_prepared(tmp_path, batch_size=2)


def test_chunk_batches_send_raw_samples_and_normalize_them_where_the_model_runs():
    pcm = np.arange(2 * 8 * 3, dtype=np.int16).reshape(2, 8, 3)
    plain = next(ChunkBatches(pcm, 2, 4).batches(0)).to("cpu")
    first, second = list(ChunkBatches(pcm, 2, 4, mean=10.0, std=4.0).batches(0))
    assert first.x.dtype == torch.int16 and first.scale == (10.0, 4.0)        # 2 bytes a sample travel
    assert torch.equal(plain.x, torch.as_tensor(pcm[:, :4], dtype=torch.float32))
    # The numbers of normalizing the whole chunk first, then shifting (u_1 = 0), bit for bit.
    whole = (torch.as_tensor(pcm, dtype=torch.float32) - 10.0) / 4.0
    u = torch.cat([torch.zeros_like(whole[:, :1]), whole[:, :-1]], 1)
    for k, batch in enumerate((first.to("cpu"), second.to("cpu"))):
        assert torch.equal(batch.x, whole[:, 4 * k:4 * k + 4]) and torch.equal(batch.u, u[:, 4 * k:4 * k + 4])
    assert torch.equal(first.rows(slice(1, 2)).to("cpu").u, u[1:, :4])
    with pytest.raises(ValueError, match="std must be > 0"):
        ChunkBatches(pcm, 2, 4, std=0.0)
