"""The book's layout and the runner's checks of bad input (fast: no notebook runs a model).

The smoke batch itself and the build of the book are tested in test_notebooks.py.
"""
import os
import subprocess
from pathlib import Path

import nbformat
import pytest

from srnn import runner
from srnn.runner import BookError

ROOT = runner.ROOT


def write_notebook(path: Path, *cells: str) -> Path:
    """A jupytext percent-format source with the given cells."""
    path.write_text("\n\n".join(cells) + "\n")
    return path


def test_config_and_toc_live_at_the_root_and_are_linked_into_book():
    for name in ("_config.yml", "_toc.yml"):
        link = ROOT / "book" / name
        assert link.is_symlink() and os.readlink(link) == f"../{name}"   # relative: works in any clone
        assert link.read_text() == (ROOT / name).read_text()
    tracked = subprocess.run(["git", "ls-files", "-s", "book/_config.yml", "book/_toc.yml"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split("\n")
    assert all(line.startswith("120000") for line in tracked if line)   # git mode of a symlink


def test_every_toc_page_has_a_page_file_that_loads_in_every_profile():
    names = runner.toc_pages(ROOT / "_toc.yml")
    assert names and len(names) == len(set(names))
    assert {p.stem for p in (ROOT / "book" / "pages").glob("*.yml")} == set(names)
    for profile in runner.PROFILES:
        for name in names:
            page = runner.load_page(ROOT / "book" / "pages" / f"{name}.yml", profile,
                                    {"profile": profile, "device": "cpu", "runs_dir": "runs"})
            assert page.source.is_file()


def test_notebook_sources_are_not_paired_with_committed_ipynb():
    tracked = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True, text=True).stdout
    assert tracked == ""
    assert list((ROOT / "book" / "notebooks").glob("*.py"))


def test_parameters_cell_is_required_once(tmp_path):
    none = write_notebook(tmp_path / "none.py", "# %%\nx = 1")
    with pytest.raises(BookError, match="exactly one cell tagged 'parameters'.*found 0"):
        runner.read_notebook(none)
    two = write_notebook(tmp_path / "two.py", '# %% tags=["parameters"]\nx = 1', '# %% tags=["parameters"]\ny = 2')
    with pytest.raises(BookError, match="found 2"):
        runner.read_notebook(two)
    ok = write_notebook(tmp_path / "ok.py", '# %% tags=["parameters"]\nx = 1\ny: int = 2  # a comment\nz = x + y')
    assert runner.declared_parameters(runner.read_notebook(ok)) == ["x", "y", "z"]


def test_unknown_parameter_names_the_page_file_and_the_notebook(tmp_path):
    page = tmp_path / "model_typo.yml"
    page.write_text("notebook: model\nsmoke: {stepz: 3}\n")
    with pytest.raises(BookError, match=r"model_typo.yml: parameter\(s\) \['stepz'\] are not in the parameters cell"):
        runner.load_page(page, "smoke", {})
    assert runner.load_page(page, "paper", {}).parameters == {}     # the typo is in the smoke section only


def test_bad_page_files_are_named(tmp_path):
    page = tmp_path / "bad.yml"
    page.write_text("notebook: model\nsmok: {steps: 3}\n")
    with pytest.raises(BookError, match=r"bad.yml: .*unknown keys \['smok'\]"):
        runner.load_page(page, "smoke", {})
    page.write_text("notebook: no_such_notebook\n")
    with pytest.raises(BookError, match="no_such_notebook.py does not exist"):
        runner.load_page(page, "smoke", {})
    with pytest.raises(BookError, match="missing.yml does not exist"):
        runner.load_page(tmp_path / "missing.yml", "smoke", {})
    page.write_text("notebook: model\nparameters: {steps: 3\n")
    with pytest.raises(BookError, match=r"bad.yml line \d+ is not valid YAML"):
        runner.load_page(page, "smoke", {})


def test_unknown_profile_and_page_are_refused_before_anything_runs(tmp_path):
    with pytest.raises(BookError, match=r"unknown profile 'fast'; choose one of \['smoke', 'paper'\]"):
        runner.run_batch("fast", "cpu", out_dir=tmp_path)
    with pytest.raises(BookError, match=r"unknown page\(s\) \['nope'\]"):
        runner.run_batch("smoke", "cpu", pages=["nope"], out_dir=tmp_path)
    with pytest.raises(BookError, match="no page named"):
        runner.run_batch("smoke", "cpu", pages=[], out_dir=tmp_path)   # an empty shell variable: not "all"
    assert not list(tmp_path.iterdir())
    with pytest.raises(SystemExit) as stop:
        runner.main(["--profile", "fast"])
    assert stop.value.code == 2
    with pytest.raises(SystemExit) as stop:
        runner.main(["--profile", "smoke", "--pages"])
    assert stop.value.code == 2


def test_a_failing_cell_stops_the_page_with_the_cell_and_error_named(tmp_path):
    source = write_notebook(tmp_path / "broken.py", '# %% tags=["parameters"]\nn = 1',
                            "# %%\ntotal = n + 1", "# %%\nraise ValueError(f'bad value {total}')")
    page = runner.Page("broken", source, {"n": 41})
    with pytest.raises(BookError) as err:
        runner.execute_page(page, "smoke", tmp_path)
    message = str(err.value)
    assert "page 'broken' failed" in message and "broken.py" in message
    assert "raise ValueError" in message and "ValueError: bad value 42" in message
    assert not (tmp_path / "broken.ipynb").exists()            # nothing the build could render
    assert (tmp_path / "failed" / "broken.ipynb").is_file()    # kept for inspection


def fake_book(tmp_path: Path, profiles: dict) -> Path:
    book = tmp_path / "book"
    (book / "executed").mkdir(parents=True)
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n" +
                                   "".join(f"  - file: executed/{name}\n" for name in profiles))
    for name, profile in profiles.items():
        if profile:
            nb = nbformat.v4.new_notebook(metadata={"srnn": {"profile": profile}})
            nbformat.write(nb, book / "executed" / f"{name}.ipynb")
    return book


def test_the_build_refuses_a_missing_or_mixed_batch(tmp_path):
    runner.check_executed_pages(fake_book(tmp_path / "ok", {"a": "smoke", "b": "smoke"}))
    with pytest.raises(BookError, match=r"executed page .*b.ipynb is missing.*srnn.runner --profile"):
        runner.check_executed_pages(fake_book(tmp_path / "missing", {"a": "smoke", "b": None}))
    with pytest.raises(BookError, match="different profiles"):
        runner.check_executed_pages(fake_book(tmp_path / "mixed", {"a": "smoke", "b": "paper"}))


def test_a_bad_data_set_name_and_a_record_of_another_format_stop_the_batch(tmp_path):
    bad_name = runner.Page("training_typo", ROOT / "book" / "notebooks" / "training.py",
                           {"page": "training_typo", "dataset": "jsbb", "train": False})
    with pytest.raises(BookError, match=r"training_typo.yml: unknown music data set 'jsbb'"):
        runner.execute_page(bad_name, "smoke", tmp_path)
    record = tmp_path / "results" / "music" / "jsb-npz-smooth-resq" / "run.json"
    record.parent.mkdir(parents=True)
    record.write_text('{"format": 999, "profile": "paper"}')
    old = runner.Page("results", ROOT / "book" / "notebooks" / "results.py",
                      {"results_root": str(tmp_path / "results")})
    with pytest.raises(BookError, match=r"run.json has results format 999"):
        runner.execute_page(old, "smoke", tmp_path)


def parallel_book(tmp_path: Path, pages: dict[str, list[str]], notebook: str) -> Path:
    """A book whose toc has the given parts (caption: pages), every page one notebook."""
    book = tmp_path / "book"
    (book / "pages").mkdir(parents=True)
    (book / "notebooks").mkdir()
    write_notebook(book / "notebooks" / "nb.py", *notebook.split("\n\n"))
    parts = "".join(f"  - caption: {caption}\n    chapters:\n" + "".join(f"      - file: executed/{p}\n" for p in names)
                    for caption, names in pages.items())
    (book / "_toc.yml").write_text(f"format: jb-book\nroot: intro\nparts:\n{parts}")
    for names in pages.values():
        for name in names:
            (book / "pages" / f"{name}.yml").write_text(f"notebook: nb\nparameters: {{out: '{tmp_path / 'out'}'}}\n")
    (tmp_path / "out").mkdir()
    return book


def test_the_pages_of_a_part_run_side_by_side_one_gpu_each_and_parts_in_order(tmp_path, monkeypatch):
    """Three pages of one part over two (pretended) GPUs, two at a time, each seeing one GPU;
    the next part's page runs after all of them."""
    import torch
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    notebook = ('# %% tags=["parameters"]\nout = ""\npage = ""\n\n'
                "# %%\nimport os, pathlib, time\ntime.sleep(1)\n"
                "seen = sorted(p.name for p in pathlib.Path(out).iterdir())\n"
                "pathlib.Path(out, page).write_text(f\"{os.environ['CUDA_VISIBLE_DEVICES']} {os.getppid()} {seen}\")")
    book = parallel_book(tmp_path, {"Training": ["a", "b", "c"], "Results": ["summary"]}, notebook)
    seconds = runner.run_batch("smoke", "auto", out_dir=book / "executed", book=book, jobs=2)
    assert list(seconds) == ["a", "b", "c", "summary"]
    ran = {p: (tmp_path / "out" / p).read_text().split(" ", 2) for p in seconds}
    assert {ran[p][0] for p in "abc"} == {"3", "5"}                 # one GPU each, both used
    assert len({ran[p][1] for p in "abc"}) == 2                     # by two worker processes
    assert ran["summary"][2] == "['a', 'b', 'c']"                   # after the whole part
    assert all((book / "executed" / f"{p}.ipynb").is_file() for p in seconds)


def test_a_failing_page_beside_others_stops_the_batch_with_its_name(tmp_path):
    notebook = ('# %% tags=["parameters"]\nout = ""\npage = ""\n\n'
                "# %%\nif page == 'b':\n    raise ValueError('bad page')")
    book = parallel_book(tmp_path, {"Training": ["a", "b"], "Results": ["summary"]}, notebook)
    with pytest.raises(BookError, match=r"page 'b' failed.*ValueError: bad page"):
        runner.run_batch("smoke", "cpu", out_dir=book / "executed", book=book, jobs=2)
    assert not (book / "executed" / "summary.ipynb").exists()
    with pytest.raises(BookError, match="--jobs must be at least 1"):
        runner.run_batch("smoke", "cpu", out_dir=book / "executed", book=book, jobs=0)


def test_the_gpus_pages_spread_over_are_the_visible_ones(monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert runner.visible_gpus("auto") == ["0", "1"] and runner.visible_gpus("cpu") == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,7")
    assert runner.visible_gpus("cuda") == ["2", "7"]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)      # the variable set, no GPU
    assert runner.visible_gpus("auto") == []


@pytest.mark.parametrize("text, says", [
    ("notebook: training\nparameters: [jsb, npz]\n", "'parameters' must be a mapping, got ['jsb', 'npz']"),
    ("notebook: 3\n", "'notebook' must be a text, got 3"),
    ("notebook: training\nsmoke: {train: maybe}\n", "parameter 'train' must be bool like its default False"),
    ("notebook: training\nsmoke: {iwae_samples: many}\n", "parameter 'iwae_samples' must be int"),
    ("notebook: training\nsmoke: {overrides: d_dim=8}\n", "parameter 'overrides' must be dict"),
    (b"notebook: training\ntitle: \"Training: Caf\xe9\"\n", "is not UTF-8 text (byte 40 is 0xe9); save it as UTF-8"),
])
def test_a_page_file_with_a_wrong_field_is_one_line_naming_the_file_and_field(tmp_path, text, says):
    from srnn.errors import command_line

    page = tmp_path / "training_jsb.yml"
    page.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(BookError) as err:
        runner.load_page(page, "smoke", {"profile": "smoke"})
    assert str(err.value).startswith(str(page)) and says in str(err.value)
    with pytest.raises(SystemExit) as stop:
        command_line(lambda argv: runner.load_page(page, "smoke", {}))([])
    assert stop.value.code == 2


def test_a_committed_run_without_its_history_says_so_in_words(tmp_path):
    import json

    from srnn.book import pages, plots
    from srnn.records.store import load_run
    committed = ROOT / "results" / "music" / "jsb-npz-smooth-resq"
    folder = tmp_path / "results" / "music" / "jsb-npz-smooth-resq"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text((committed / "run.json").read_text())       # history.jsonl not copied
    record = load_run(folder / "run.json")
    summary = pages.run_summary(record)
    assert f"**No learning curve**: `{folder / 'history.jsonl'}` is missing" in summary
    assert "No learning curve" not in pages.run_summary(load_run(committed / "run.json"))
    fig = plots.validation_by_group({"JSB": {"main": record}}, "elbo_per_step")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["main (no history.jsonl: not drawn)"]
    assert json.loads((folder / "run.json").read_text())["id"] == record["id"]


def test_the_parameters_cells_are_hidden_from_the_page_and_kept_in_the_notebook():
    import nbformat

    from srnn.runner import hide_parameters
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title"),
                                         nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                                         nbformat.v4.new_code_cell("x = 2", metadata={"tags": ["injected-parameters"]}),
                                         nbformat.v4.new_code_cell("print(x)")])
    hide_parameters(nb)
    hide_parameters(nb)
    assert [c.metadata.get("tags", []) for c in nb.cells] == [
        [], ["parameters", "remove-cell"], ["injected-parameters", "remove-cell"], []]
    assert [c.source for c in nb.cells][1:3] == ["x = 1", "x = 2"]
