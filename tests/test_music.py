"""Music data: the three file forms, the streamed rows, fingerprints and bad input."""
import dataclasses
import pickle
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from srnn.datasets import music, registry
from srnn.datasets.registry import DataError

DATA = registry.DATA_DIR / "jsb"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "polyphonic"

# SOURCES.md: pieces and frames per split (train, valid, test), for both forms.
COUNTS = {
    ("jsb", "classic"): ((229, 13_807), (76, 4_602), (77, 4_725)),
    ("nottingham", "classic"): ((694, 176_561), (173, 45_513), (170, 44_463)),
    ("muse", "classic"): ((524, 245_202), (135, 82_755), (124, 64_339)),
    ("piano", "classic"): ((87, 75_911), (12, 8_540), (25, 19_036)),
    # npz: 16 streams of (train chunks / 16) * 100 steps; the test pieces
    ("jsb", "npz"): ((16, 27_200), (16, 8_000), (77, 9_396)),
    ("nottingham", "npz"): ((16, 147_200), (16, 36_800), (170, 37_062)),
    ("muse", "npz"): ((16, 248_000), (16, 78_400), (124, 67_391)),
    ("piano", "npz"): ((16, 70_400), (16, 9_600), (25, 17_328)),
}


def _counts(fingerprint):
    return tuple((fingerprint[s]["pieces"], fingerprint[s]["frames"]) for s in music.SPLITS)


@pytest.fixture(scope="module")
def jsb_npz():
    return music.dataset("jsb", "npz")


def test_registry_fingerprints_match_sources_counts():
    for key, counts in COUNTS.items():
        assert _counts(registry.FINGERPRINTS[key]) == counts, key


def test_pickle_and_mat_hold_the_same_rolls():
    from_pickle = music.load_pickle(DATA / "JSB_Chorales.pickle")
    from_mat = music.load_mat(DATA / "JSB_Chorales.mat")
    for split in music.SPLITS:
        assert len(from_pickle[split]) == len(from_mat[split])
        assert all(np.array_equal(a, b) for a, b in zip(from_pickle[split], from_mat[split]))
    rolls = from_mat["train"] + from_mat["valid"] + from_mat["test"]
    notes = np.nonzero(np.concatenate(rolls))[1] + music.LOWEST_NOTE
    assert (notes.min(), notes.max(), len(notes)) == (43, 96, 90_002)  # SOURCES.md
    assert rolls[0].dtype == np.float32 and rolls[0].shape[1] == 88


@pytest.mark.parametrize("form", ["npz", "classic", "pickle"])
def test_jsb_datasets_verify(form):
    data = music.dataset("jsb", form)
    expected = COUNTS[("jsb", "npz" if form == "npz" else "classic")]
    assert data.name == f"jsb-{form}" and _counts(data.fingerprint) == expected
    assert data.fingerprint["sha256"] == registry.FILES[data.fingerprint["file"]].sha256
    masked = sum(int(b.mask.sum()) for b in data.test)
    assert masked == expected[2][1]
    assert all(b.reset for b in data.test) and data.valid[0].reset


def test_npz_rows_are_the_authors_arrays(jsb_npz):
    arrays = music.load_npz(DATA / "jsb_raw_batchsize16_seqlen100.npz")
    assert torch.equal(jsb_npz.train.x, torch.as_tensor(arrays["x_train"]))
    assert torch.equal(jsb_npz.train.u, torch.as_tensor(arrays["u_train"]))
    x_valid = torch.cat([b.x for b in jsb_npz.valid])
    assert torch.equal(x_valid, torch.as_tensor(arrays["x_valid"]))


def test_validation_rows_start_from_zero_as_the_original_whatever_the_batch_size(jsb_npz):
    """The original evaluates every 100-step validation row from a zero state (its f_valid
    updates no state): every batch resets, and the rows are the stored ones for any batch
    size. valid_state="carry" keeps the streamed validation, each row continuing the last."""
    assert [b.reset for b in jsb_npz.valid] == [True] * 5
    small = music.dataset("jsb", "npz", batch_size=4)
    assert torch.equal(torch.cat([b.x for b in small.valid]), torch.cat([b.x for b in jsb_npz.valid]))
    carried = music.dataset("jsb", "npz", valid_state="carry")
    assert [b.reset for b in carried.valid] == [True] + [False] * 4
    for before, after in zip(carried.valid, carried.valid[1:]):
        assert torch.equal(after.u[:, 0], before.x[:, -1])


def test_npz_streams_continue_across_batches(jsb_npz):
    batches = list(jsb_npz.train.batches(epoch=0))
    assert len(batches) == len(jsb_npz.train) == 17
    for before, after in zip(batches, batches[1:]):
        assert torch.equal(after.u[:, 0], before.x[:, -1])  # row j of batch i+1 continues row j
        assert torch.equal(after.u[:, 1:], after.x[:, :-1])
    # stream j + 1 starts where stream j ends
    assert torch.equal(batches[0].u[1:, 0], batches[-1].x[:-1, -1])


def test_npz_test_keeps_the_given_inputs(jsb_npz):
    arrays = music.load_npz(DATA / "jsb_raw_batchsize16_seqlen100.npz")
    lengths = arrays["mask_test"].sum(1)
    assert [int(b.mask.sum(1)[0]) for b in jsb_npz.test] == sorted(lengths, reverse=True)[::16]
    for b in jsb_npz.test:
        assert torch.isfinite(b.u).all() and (b.u[b.mask == 0] == 0).all()
        assert b.x.shape[1] == int(b.mask.sum(1).max())
    # the authors' u_1 is the frame before the first target, not zero
    first = jsb_npz.test[0]
    assert first.u[:, 0].sum() > 0 and torch.equal(first.u[:, 1:], first.x[:, :-1] * first.mask[:, 1:, None])


def test_npz_rows_recut_for_other_sizes():
    data = music.dataset("jsb", "npz", batch_size=8, window=50)
    s = music.load_npz(DATA / "jsb_raw_batchsize16_seqlen100.npz")["s_train"]
    steps = 27_200 // 400 * 50  # per stream
    assert data.train.x.shape == (8 * steps // 50, 50, 88)
    stream0 = torch.cat([b.x[0] for b in data.train.batches(0)])
    assert torch.equal(stream0, torch.as_tensor(s[1:1 + steps]))
    assert all(len(b.x) == 16 for b in data.valid)                 # the stored rows, from zero
    assert all(len(b.x) == 8 for b in music.dataset("jsb", "npz", batch_size=8, window=50,
                                                     valid_state="carry").valid)


def test_classic_training_rows():
    data = music.dataset("jsb", "classic")
    rolls = music.pieces("jsb", "classic", "train")
    assert data.train.x.shape == (128, 100, 88)  # 13,807 frames -> 8 batches of 16 x 100
    batches = list(data.train.batches(0))
    assert (batches[0].u[0, 0] == 0).all()  # u_1 = 0 at the start of the sequence
    stream0 = torch.cat([b.x[0] for b in batches])
    assert torch.equal(stream0, torch.as_tensor(np.concatenate(rolls)[:800]))
    for before, after in zip(batches, batches[1:]):
        assert torch.equal(after.u[:, 0], before.x[:, -1])
    # valid and test: whole pieces, u_1 = 0, masks count the frames
    assert sum(int(b.mask.sum()) for b in data.valid) == 4_602
    assert all((b.u[:, 0] == 0).all() and b.reset for b in data.valid + data.test)


def test_stream_rows_need_enough_steps():
    with pytest.raises(DataError, match="cannot fill one batch"):
        music.stream_rows(np.zeros((100, 88), np.float32), batch_size=16, window=100)


def test_fingerprint_sees_one_note_and_piece_boundaries():
    rolls = music.pieces("jsb", "classic", "test")
    base = music.fingerprint(rolls)["sha256"]
    changed = [r.copy() for r in rolls]
    changed[5][3, 40] = 1 - changed[5][3, 40]
    assert music.fingerprint(changed)["sha256"] != base
    merged = [np.concatenate(rolls[:2])] + rolls[2:]
    assert music.fingerprint(merged)["sha256"] != base


def test_pieces_of_each_form():
    test = music.pieces("jsb", "npz", "test")
    assert len(test) == 77 and sum(map(len, test)) == 9_396
    streams = music.pieces("jsb", "npz", "valid")
    assert len(streams) == 16 and all(len(s) == 500 for s in streams)
    with pytest.raises(ValueError, match="split must be one of"):
        music.pieces("jsb", "npz", "dev")


def test_unknown_name_or_form():
    with pytest.raises(ValueError, match="choose one of"):
        music.dataset("bach")
    with pytest.raises(ValueError, match="comes in forms"):
        music.dataset("muse", "midi")


def test_original_pickle_missing_without_network_says_what_to_do(tmp_path, monkeypatch):
    with socket.socket() as s:           # a port nothing listens on: a machine with no network
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/MuseData.pickle"
    entry = registry.FILES["MuseData.pickle"]
    monkeypatch.setitem(registry.FILES, entry.name, dataclasses.replace(entry, urls=(dead,)))
    with pytest.raises(DataError) as error:
        music.dataset("muse", "pickle", cache=tmp_path)
    message = str(error.value)
    assert "'MuseData.pickle'" in message and dead in message and entry.git_blob in message
    assert f"copy it to {tmp_path / 'MuseData.pickle'}" in message


# --- bad input: each a DataError that names the file and the fix -------------------

def _truncated(tmp_path, name):
    data = (DATA / name).read_bytes()
    path = tmp_path / name
    path.write_bytes(data[:len(data) // 2])
    return path


@pytest.mark.parametrize("name, loader", [("jsb_raw_batchsize16_seqlen100.npz", music.load_npz),
                                          ("JSB_Chorales.mat", music.load_mat),
                                          ("JSB_Chorales.pickle", music.load_pickle)])
def test_truncated_file(tmp_path, name, loader):
    path = _truncated(tmp_path, name)
    with pytest.raises(DataError, match=f"{path}.*truncated: delete it and fetch it again"):
        loader(path)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (shutil.copy, (__file__, self.marker))


def test_pickle_with_foreign_objects_is_refused_unrun(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps({"train": [_Payload(str(marker))], "valid": [], "test": []}, protocol=2))
    with pytest.raises(DataError, match=f"{path} asks to build shutil.copy"):
        music.load_pickle(path)
    assert not marker.exists()


def test_pickle_with_bad_notes(tmp_path):
    path = tmp_path / "bad.pickle"
    path.write_bytes(pickle.dumps({"train": [[(60, 130)]], "valid": [], "test": []}))
    with pytest.raises(DataError, match=r"bad.pickle train\[0\], step 0: 130 is not a MIDI note"):
        music.load_pickle(path)


def test_npz_that_is_not_streamed(tmp_path):
    arrays = dict(np.load(DATA / "jsb_raw_batchsize16_seqlen100.npz"))
    order = np.random.default_rng(0).permutation(len(arrays["x_train"]))
    arrays["x_train"], arrays["u_train"] = arrays["x_train"][order], arrays["u_train"][order]
    path = tmp_path / "shuffled.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=f"{path} train: the rows are not one sequence streamed"):
        music.load_npz(path)


def test_mat_without_the_cells(tmp_path):
    import scipy.io
    path = tmp_path / "other.mat"
    scipy.io.savemat(path, {"traindata": np.zeros((3, 88))})
    with pytest.raises(DataError, match="other.mat has no cell array 'traindata'"):
        music.load_mat(path)


def test_wrong_fingerprint_is_reported(monkeypatch):
    wrong = {split: dict(fp) for split, fp in registry.FINGERPRINTS[("jsb", "classic")].items()}
    wrong["valid"]["sha256"] = "0" * 64
    monkeypatch.setitem(registry.FINGERPRINTS, ("jsb", "classic"), wrong)
    with pytest.raises(DataError, match=r"JSB_Chorales.mat does not hold the expected piano rolls:\n  valid"):
        music.dataset("jsb", "classic")


# --- the other three sets, from the shared folder beside the repository -------------

@pytest.mark.skipif(not SHARED.is_dir(),
                    reason=f"{SHARED} is absent (the non-embedded sets are downloaded, not tested offline)")
@pytest.mark.parametrize("name", ["nottingham", "muse", "piano"])
@pytest.mark.parametrize("form", ["npz", "classic"])
def test_shared_sets_verify(tmp_path, name, form):
    file = registry.DATASETS[name][form]
    (tmp_path / file).symlink_to(SHARED / ("srnn_npz" if form == "npz" else "mat") / file)
    data = music.dataset(name, form, cache=tmp_path)
    assert _counts(data.fingerprint) == COUNTS[(name, form)]
    assert len(data.train) * 16 * 100 <= COUNTS[(name, form)][0][1]


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} is absent")
def test_an_original_style_pickle_verifies_against_the_classic_fingerprint(tmp_path, monkeypatch):
    """Piano-midi.de written as Boulanger-Lewandowski's pickles are (lists of note tuples of
    numpy int64; protocol 4, since Python 3's protocol 2 wraps the scalars' bytes in a
    call that the Python 2 originals do not hold): found by the registry's git blob id,
    read by the restricted unpickler, checked against the fingerprint of the .mat rolls."""
    rolls = music.load_mat(SHARED / "mat" / "Piano_midi.mat")
    notes = {split: [[tuple(np.int64(n + music.LOWEST_NOTE) for n in np.flatnonzero(step)) for step in roll]
                     for roll in rolls[split]] for split in music.SPLITS}
    path = tmp_path / "Piano-midi.de.pickle"
    path.write_bytes(pickle.dumps(notes, protocol=4))
    entry = registry.FILES[path.name]
    monkeypatch.setitem(registry.FILES, path.name, dataclasses.replace(entry, git_blob=registry.git_blob_of(path)))
    data = music.dataset("piano", "pickle", cache=tmp_path)
    assert data.name == "piano-pickle" and _counts(data.fingerprint) == COUNTS[("piano", "classic")]


@pytest.mark.parametrize("where", [0.3, 0.5, 0.9])
def test_a_damaged_mat_is_named(tmp_path, where):
    data = bytearray((DATA / "JSB_Chorales.mat").read_bytes())
    at = int(len(data) * where)
    data[at:at + 64] = bytes(64)                          # a block of zeros inside the file, its length kept
    path = tmp_path / "JSB_Chorales.mat"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=f"{path} is not a readable MATLAB file .* damaged or truncated"):
        music.load_mat(path)
