"""The release: only the search protocol's choices are exported; an export writes both copies,
the list entry and the card only when the float32 copy gives its record's test bound
exactly; the archive is made from a clean commit with a book built from it, and holds the
source, the exact weights, the book, the DOI metadata and the sha256 of every file."""
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from srnn import release
from srnn.config import preset
from srnn.pretrained import load_file, released
from srnn.records import grid

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--name", "tiny", "--profile", "smoke", "--iwae-samples", "1", "--test-paths", "2", "--set", "patience=0",
        "batch_size=128", "d_dim=8", "z_dim=4", "mlp_dim=8", "device=cpu", "epochs=1"]
RUN = "jsb-npz-smooth-resq-tiny"


def point(dataset, variant, setting, valid, seed=grid.GRID_SEED):
    """A record of one grid point, as much of it as the choice reads."""
    cfg = grid.config(variant, setting, seed)
    return {"id": f"{dataset}-{variant}-{setting or 'paper'}-{seed}", "domain": "music", "data_form": "npz",
            "dataset": dataset, "variant": variant, "seed": seed, "config": cfg.to_dict(),
            "valid_best": {"elbo_per_step": valid}}


def test_only_the_protocols_choice_is_released():
    runs = [point("jsb", "VRNN", s, v) for s, v in zip(grid.SETTINGS, (-5.0, -4.8, -4.9, -4.7))]
    assert release.chosen_run(runs[3], runs) == "jsb-vrnn"
    with pytest.raises(release.ReleaseError, match="the protocol chose jsb-VRNN-batch8-drop-dz-123"):
        release.chosen_run(runs[1], runs)
    with pytest.raises(release.ReleaseError, match="not complete.*--name batch8 --set batch_size=8"):
        release.chosen_run(runs[3], [r for r in runs if r is not runs[1]])
    other = {**runs[3], "config": preset("vrnn_music", vrnn_prior="standard").to_dict(), "variant": "VRNN-I"}
    with pytest.raises(release.ReleaseError, match="not a run of the search protocol"):
        release.chosen_run(other, runs)


def test_the_rnn_released_is_its_sets_run_with_the_papers_settings_and_seed():
    rnn = {**point("jsb", "VRNN", "", -6.0), "id": "jsb-npz-rnn", "variant": "RNN",
           "config": preset("rnn_music").to_dict()}
    assert release.chosen_run(rnn, [rnn]) == "jsb-rnn"
    for wrong in ({**rnn, "config": preset("rnn_music", batch_size=8).to_dict()},     # another setting
                  {**rnn, "seed": 124, "config": preset("rnn_music", seed=124).to_dict()},  # another seed
                  {**rnn, "id": "jsb-npz-rnn-batch8"}):                               # not the set's main run
        with pytest.raises(release.ReleaseError, match="not the RNN released for jsb: the RNN keeps the paper's"):
            release.chosen_run(wrong, [wrong])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A one-epoch run of a tiny SRNN on JSB Chorales with its record."""
    from srnn.experiment import main
    where = tmp_path_factory.mktemp("run")
    assert main(["music", "--dataset", "jsb", *TINY, "--runs", str(where / "runs"),
                 "--results", str(where / "results")]) == 0
    return where


@pytest.fixture
def exported(tiny_run, tmp_path, monkeypatch):
    """The tiny run exported (as if the protocol had chosen it) into a data folder and a cache."""
    monkeypatch.setattr(release, "chosen_run", lambda record, runs: "jsb")
    out, cache = tmp_path / "data" / "pretrained", tmp_path / "cache"
    model = release.export(tiny_run / "runs" / RUN, tiny_run / "results", out, cache, progress=False)
    return model, out, cache


def test_an_export_writes_both_copies_the_entry_and_the_card(exported, tiny_run):
    model, out, cache = exported
    record = json.loads((tiny_run / "results" / "music" / RUN / "run.json").read_text())
    assert released(out.parent)["jsb"] == model
    assert (model.seed, model.paths, model.record_test) == (record["seed"], 2, record["test"]["elbo_per_step_seq"])
    small, exact = out / model.shipped.name, cache / model.exact.name
    assert hashlib.sha256(small.read_bytes()).hexdigest() == model.shipped.sha256
    assert hashlib.sha256(exact.read_bytes()).hexdigest() == model.exact.sha256
    best = torch.load(tiny_run / "runs" / RUN / "best.pt", weights_only=True)["model"]
    float32 = load_file(exact).state_dict()
    assert all(torch.equal(float32[k], v) for k, v in best.items())
    eight = load_file(small).state_dict()
    assert all((eight[k] - v).abs().max() <= v.abs().max() / 100 for k, v in best.items())
    assert model.shipped_test != model.record_test and abs(model.shipped_test - model.record_test) < 5
    text = (out / "jsb.md").read_text()
    assert f"{model.record_test:.4f}" in text and f"{model.shipped_test:.4f}" in text
    assert record["code"]["commit"] in text and model.exact.sha256 in text and "## License" in text


def test_an_export_whose_float32_copy_misses_the_record_writes_nothing(tiny_run, tmp_path, monkeypatch):
    results = tmp_path / "results"
    shutil.copytree(tiny_run / "results", results)
    path = results / "music" / RUN / "run.json"
    record = json.loads(path.read_text())
    record["test"]["elbo_per_step_seq"] += 1e-12
    path.write_text(json.dumps(record))
    monkeypatch.setattr(release, "chosen_run", lambda record, runs: "jsb")
    with pytest.raises(release.ReleaseError, match="the float32 copy of .* scores"):
        release.export(tiny_run / "runs" / RUN, results, tmp_path / "out", tmp_path / "cache", progress=False)
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_an_export_of_a_run_without_a_record_is_refused(tiny_run, tmp_path):
    with pytest.raises(release.ReleaseError, match="no committed record"):
        release.export(tiny_run / "runs" / RUN, tmp_path / "results", tmp_path / "out", tmp_path / "cache")


def git(*args, cwd):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


@pytest.fixture
def clone(exported, tmp_path):
    """A small repository with the release's ingredients, committed, and its book built."""
    _, out, cache = exported
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("pyproject.toml", "CITATION.cff", "_config.yml", ".gitignore"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(out.parent, root / "data")
    (root / "results" / "music").mkdir(parents=True)
    (root / "results" / "music" / "run.json").write_text("{}")
    git("init", "-q", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "release", cwd=root)
    html = root / "book" / "_build" / "html"
    html.mkdir(parents=True)
    (html / "index.html").write_text("<html>the book</html>")
    (html / "BUILT_FROM").write_text(subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=root, text=True))
    return root, cache


def test_the_archive_holds_source_weights_book_metadata_and_sums(clone, tmp_path):
    root, cache = clone
    path = release.archive(root, tmp_path / "a.tar.gz", cache, date="2026-12-07")
    unpacked = tmp_path / "unpacked"
    with tarfile.open(path) as packed:
        packed.extractall(unpacked, filter="data")
    top = unpacked / "srnn-0.1.0"
    commit = (root / "book/_build/html/BUILT_FROM").read_text().strip()
    assert (top / "source" / "results" / "music" / "run.json").is_file()
    assert (top / "source" / "data" / "pretrained" / "models.json").is_file()
    model = released(root / "data")["jsb"]
    weights = top / "weights" / model.exact.name
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == model.exact.sha256
    assert (top / "book" / "index.html").read_text() == "<html>the book</html>"
    meta = json.loads((top / ".zenodo.json").read_text())
    assert (meta["version"], meta["publication_date"], meta["license"], meta["upload_type"]) == \
        ("0.1.0", "2026-12-07", "MIT", "software")
    assert {r["identifier"] for r in meta["related_identifiers"]} >= {"10.48550/arXiv.1605.07571"}
    assert commit in (top / "README.md").read_text() and (top / "CITATION.cff").is_file()
    sums = dict(reversed(line.split("  ", 1)) for line in (top / "SHA256SUMS").read_text().splitlines())
    files = {p.relative_to(top).as_posix() for p in top.rglob("*") if p.is_file()} - {"SHA256SUMS"}
    assert set(sums) == files
    assert all(hashlib.sha256((top / f).read_bytes()).hexdigest() == digest for f, digest in sums.items())
    with pytest.raises(release.ReleaseError, match="exists: remove it"):
        release.archive(root, path, cache)


def test_the_archive_refuses_a_dirty_tree_a_stale_book_and_missing_weights(clone, tmp_path):
    root, cache = clone
    (root / "CITATION.cff").write_text((root / "CITATION.cff").read_text() + "\n")
    with pytest.raises(release.ReleaseError, match="changes not committed"):
        release.archive(root, tmp_path / "a.tar.gz", cache)
    git("commit", "-q", "-am", "a change", cwd=root)
    with pytest.raises(release.ReleaseError, match="was built from .*run `make book` first"):
        release.archive(root, tmp_path / "a.tar.gz", cache)
    (root / "book/_build/html/BUILT_FROM").write_text(
        subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=root, text=True))
    with pytest.raises(release.ReleaseError, match="exact copy of 'jsb'.*it is not there.*srnn.release export"):
        release.archive(root, tmp_path / "a.tar.gz", tmp_path / "empty")
    assert not (tmp_path / "a.tar.gz").exists()


def test_the_release_command_says_what_is_wrong_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "srnn.release", "export", str(tmp_path / "runs" / "x")],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode != 0 and "no committed record" in done.stderr and "Traceback" not in done.stderr


def test_a_checkpoint_older_than_data_fingerprints_is_bound_by_its_record(tiny_run, tmp_path, monkeypatch):
    run = tmp_path / "runs" / RUN
    shutil.copytree(tiny_run / "runs" / RUN, run)
    ckpt = torch.load(run / "best.pt", weights_only=True)
    del ckpt["data"]
    torch.save(ckpt, run / "best.pt")
    monkeypatch.setattr(release, "chosen_run", lambda record, runs: "jsb")
    model = release.export(run, tiny_run / "results", tmp_path / "out", tmp_path / "cache", progress=False)
    assert (tmp_path / "out" / model.shipped.name).is_file()
    ckpt["config"]["d_dim"] = 9                                   # another model's checkpoint is still refused
    torch.save(ckpt, run / "best.pt")
    with pytest.raises(Exception, match="d_dim"):
        release.export(run, tiny_run / "results", tmp_path / "out2", tmp_path / "cache2", progress=False)
