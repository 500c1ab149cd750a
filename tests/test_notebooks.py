"""Every page of the book runs under papermill with the smoke profile, records sane numbers,
and the book built from them (warnings as errors) shows its figures, players and tables.

The batch runs once for this module into a temporary mirror of book/ (the working tree's
book/executed/ and runs/ are never touched), which takes a minute or two on two cores.
"""
import ast
import math
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from srnn import runner

ROOT = runner.ROOT


def mirror_book(tmp: Path) -> Path:
    """tmp/book links every source of book/ (not its build products); tmp/srnn lets the
    model page's literalinclude paths (../../srnn/...) resolve as in the repository."""
    (tmp / "srnn").symlink_to(ROOT / "srnn")
    book = tmp / "book"
    book.mkdir()
    for entry in (ROOT / "book").iterdir():
        if entry.name not in ("executed", "_build"):
            (book / entry.name).symlink_to(entry)
    return book


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("book")
    book = mirror_book(tmp)
    seconds = runner.run_batch("smoke", "cpu", out_dir=book / "executed", runs_dir=tmp / "runs")
    pages = {name: nbformat.read(book / "executed" / f"{name}.ipynb", as_version=4) for name in seconds}
    return {"book": book, "runs": tmp / "runs", "pages": pages, "seconds": seconds}


def glued(nb) -> dict:
    """The values a page recorded with myst_nb.glue, by name."""
    values = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                values[name] = ast.literal_eval(out["data"]["application/papermill.record/text/plain"])
    return values


def text(nb) -> str:
    return "\n".join(str(out.get("text", "")) + str(out.get("data", {}).get("text/markdown", ""))
                     for cell in nb.cells for out in cell.get("outputs", []))


def finite(value, low, high):
    return isinstance(value, (int, float)) and math.isfinite(value) and low < value < high


def test_every_toc_page_ran_with_the_smoke_profile(batch):
    assert list(batch["pages"]) == runner.toc_pages(ROOT / "_toc.yml")
    for name, nb in batch["pages"].items():
        assert nb.metadata["srnn"] == {"page": name, "profile": "smoke", "source": nb.metadata["srnn"]["source"]}
        assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    runner.check_executed_pages(batch["book"])
    print({name: round(s, 1) for name, s in batch["seconds"].items()}, file=sys.stderr)


def test_every_notebook_reads_in_one_sitting():
    """A page is narrative and short calls into srnn: tables and figures are built in the package."""
    lines = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "book" / "notebooks").glob("*.py")}
    assert {name: n for name, n in lines.items() if n > 150} == {}


def test_implementation_page(batch):
    g = glued(batch["pages"]["implementation"])
    assert g["params_blizzard"] > g["params_timit"] > g["params_music"] > 1_000_000
    assert finite(g["demo_elbo_per_step"], -200, 0)


def test_data_pages(batch):
    music = glued(batch["pages"]["data_music"])
    assert (music["classic_test_frames"], music["npz_test_frames"]) == (4725, 9396)   # FACTS.md section 4
    assert music["npz_repeat"] > music["classic_repeat"]        # the finer grid repeats more steps
    speech = glued(batch["pages"]["data_speech"])
    assert speech["rebuild_error"] < 1e-4                      # frames -> waveform undoes the normalization
    assert finite(speech["std"], 1e-4, 1) and speech["train_seconds"] > speech["test_seconds"] > 0


@pytest.mark.parametrize("page, domain, run, low, high, epochs", [
    ("training_jsb", "music", "jsb-npz-smooth-resq", -60, 0, 4),            # 88 Bernoulli keys per step
    ("training_speech_sample", "speech", "sample-smooth-resq", -1e6, 1e6, 2),  # Gaussian density per 0.5 s
])
def test_trained_pages_record_a_sane_run(batch, page, domain, run, low, high, epochs):
    assert finite(glued(batch["pages"][page])["elbo_smoke"], low, high)
    folder = batch["runs"] / "results" / domain / run
    assert (folder / "run.json").is_file() and (folder / "history.jsonl").is_file()
    assert len((folder / "history.jsonl").read_text().splitlines()) == epochs     # smoke runs stay short
    assert list((folder / "samples").glob("*.wav"))


@pytest.mark.parametrize("page", ["training_timit", "training_blizzard", "training_nottingham"])
def test_pages_without_data_render_honestly(batch, page):
    nb = batch["pages"][page]
    if "elbo_paper" not in glued(nb):                          # no committed run: say so, with the command
        assert "No committed run yet" in text(nb) and f"--pages {page}" in text(nb)
    assert not list((batch["runs"] / "results").glob(f"*/{page.removeprefix('training_')}-*"))   # nothing trained


def test_annealing_and_variants_pages(batch):
    annealing = glued(batch["pages"]["annealing"])
    for schedule in ("none", "paper", "code", "fast", "slow"):
        assert finite(annealing[f"elbo_smoke_{schedule}"], -60, 0)
        assert 0 <= annealing[f"active_smoke_{schedule}"] <= 8      # of z_dim = 8 in the smoke settings
    variants = glued(batch["pages"]["variants"])
    for variant in ("smooth+Resq", "smooth", "filt+Resq", "filt"):
        assert finite(variants[f"elbo_smoke_jsb_{variant}"], -60, 0)
        assert f"elbo_smoke_nottingham_{variant}" not in variants     # not trained offline
    assert not list((batch["runs"] / "results").glob("music/nottingham-*"))
    # the smooth+Resq run and the paper schedule are the training page's run, not retrained
    assert variants["elbo_smoke_jsb_smooth+Resq"] == annealing["elbo_smoke_paper"] == \
        glued(batch["pages"]["training_jsb"])["elbo_smoke"]


def test_results_and_samples_pages(batch):
    committed = [p for p in (ROOT / "results").glob("**/run.json")] if (ROOT / "results").exists() else []
    results = glued(batch["pages"]["results"])
    assert results["committed_runs"] <= len(committed)
    assert results["rows_missing"] <= 4 + 14                    # Table 2 rows + Table 1 cells (SRNN and baselines)
    assert glued(batch["pages"]["samples"])["music_runs"] >= 1  # at least this batch's JSB run


def test_book_builds_with_warnings_as_errors_and_shows_figures_players_tables(batch):
    book = batch["book"]
    build = subprocess.run([str(Path(sys.executable).with_name("jupyter-book")), "build", str(book), "-W", "-n",
                            "--keep-going"], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    html = book / "_build" / "html"
    page = {name: (html / "executed" / f"{name}.html").read_text() for name in batch["pages"]}
    assert page["data_music"].count("<img") >= 2 and 'id="fig-piano-rolls"' in page["data_music"]
    assert "<audio" in page["data_music"] and page["data_speech"].count("<audio") >= 2
    assert "<audio" in page["samples"] and "<img" in page["samples"]
    assert 'id="tab-results-music"' in page["results"] and 'id="tab-results-speech"' in page["results"]
    assert "no run yet" in page["results"]
    assert 'id="tab-results-seeds"' in page["first_protocol"] and 'id="tab-model-sizes"' in page["implementation"]
    assert "class GaussianHead(nn.Module):" in re.sub(r"<[^>]+>", "", page["model"])   # literalinclude of srnn
    assert "_static/mathjax/tex-chtml.js" in page["model"]                  # equations render offline
    assert not [name for name, h in page.items() if re.search(r'<(script|link)[^>]*(src|href)="https?://', h)]
    assert "Fraccaro" in (html / "references.html").read_text()
