"""The book as it is published: the checks of its built HTML (on small fixtures), the push
to a gh-pages branch (against a local bare repository), the Jupyter Book version guard and
the Pages workflow, validated against GitHub's workflow schema."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from srnn import publish
from srnn.book.check import check_book
from srnn.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "html"


@pytest.fixture
def site(tmp_path):
    """A copy of the fixture book: two pages that pass every check."""
    shutil.copytree(FIXTURE, tmp_path / "html")
    return tmp_path / "html"


def spoil(site: Path, old: str, new: str, page: str = "index.html") -> None:
    path = site / page
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))


def test_the_fixture_book_passes(site):
    assert check_book(site) == []


@pytest.mark.parametrize("old, new, problem", [
    ("<p>See", "<p>As issue 12 asked, see", "names the tracker ('issue 12'"),
    ('href="page.html#results"', 'href="pages.html#results"', "a broken link to pages.html#results"),
    ('href="page.html#results"', 'href="page.html#nowhere"', "a missing anchor page.html#nowhere"),
    ('src="_images/plot.png"', 'src="_images/gone.png"', "a broken link to _images/gone.png"),
    ("<figcaption><p>A plot.</p></figcaption>", "", "a figure without a caption"),
    ('<caption><span class="caption-text">A table.</span></caption>', "", "a table without a caption (#tab-one)"),
    ("</article>", '<div class="cell_output"><img src="_images/plot.png"></div></article>',
     "an image without a caption (_images/plot.png)"),
    ("</article>", '<figure><img src="_images/plot.png"><figcaption><p>A plot.<a href="#top">#</a></p>'
     "</figcaption></figure></article>", "2 figures or tables share the caption 'A plot.'"),
])
def test_each_defect_fails_the_check(site, old, new, problem):
    spoil(site, old, new)
    found = check_book(site)
    assert len(found) == 1 and found[0].startswith("index.html: ") and problem in found[0], found


def test_a_folder_without_a_book_fails(tmp_path):
    assert "no built book" in check_book(tmp_path)[0]


def test_the_checker_command_exits_non_zero_on_a_problem(site, capsys):
    from srnn.book.check import main
    assert main([str(site)]) == 0
    spoil(site, "<p>See", "<p>issue 3: see")
    assert main([str(site)]) == 1 and "names the tracker" in capsys.readouterr().err


def test_push_replaces_the_gh_pages_branch_of_a_bare_repository(site, tmp_path):
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    first = publish.push(site, str(bare), "gh-pages")
    (site / "page.html").unlink()
    second = publish.push(site, str(bare), "gh-pages")
    assert first != second
    files = subprocess.run(["git", "--git-dir", str(bare), "ls-tree", "-r", "--name-only", "gh-pages"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert sorted(files) == [".nojekyll", "_images/plot.png", "_static/logo.png", "_static/style.css", "index.html"]
    log = subprocess.run(["git", "--git-dir", str(bare), "log", "--format=%s", "gh-pages"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(log) == 1 and log[0].startswith("The book, built from ")


def test_push_refuses_a_folder_without_a_book(tmp_path):
    with pytest.raises(UserError, match="no built book"):
        publish.push(tmp_path, str(tmp_path / "remote.git"))


@pytest.mark.parametrize("version", ["2.0.0", "0.15.1"])
def test_the_build_refuses_a_jupyter_book_other_than_1(version, monkeypatch, capsys):
    monkeypatch.setattr(publish.metadata, "version", lambda name: version)
    ran = []
    monkeypatch.setattr(publish.subprocess, "run", lambda *a, **k: ran.append(a))
    with pytest.raises(SystemExit) as stop:
        publish.main(["build"])
    assert stop.value.code != 0 and not ran
    assert f"jupyter-book {version} is installed; this book builds with Jupyter Book 1" in capsys.readouterr().err


def test_the_installed_jupyter_book_is_1():
    assert publish.check_jupyter_book().startswith("1.")


def test_the_pages_workflow_is_a_valid_github_workflow():
    """check-jsonschema's vendored copy of GitHub's workflow schema: no network needed."""
    workflow = ROOT / ".github" / "workflows" / "book.yml"
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           str(workflow)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    text = workflow.read_text()
    for step in ("make book", "actions/upload-pages-artifact", "actions/deploy-pages", "book/_build/html"):
        assert step in text


def test_the_config_names_the_repository_and_launch_buttons():
    import yaml
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["url"].startswith("https://github.com/")
    assert config["launch_buttons"]["binderhub_url"] and config["launch_buttons"]["colab_url"]
    assert config["sphinx"]["config"]["numfig"] is False       # no "Table 30" beside the paper's "Table 2"
    assert config["repository"]["url"] in config["parse"]["myst_substitutions"]["repository"]


def test_a_build_names_its_commit_and_whether_the_tree_had_changes(tmp_path):
    assert publish.built_from(tmp_path) == "not a git clone"
    run = dict(cwd=tmp_path, check=True, capture_output=True)
    subprocess.run(["git", "init", "-q"], **run)
    (tmp_path / "a").write_text("a")
    subprocess.run(["git", "add", "a"], **run)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a"], **run)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], text=True, **run).stdout.strip()
    assert publish.built_from(tmp_path) == commit
    (tmp_path / "a").write_text("b")
    assert publish.built_from(tmp_path) == f"{commit} with changes not committed"


def test_no_source_a_reader_opens_names_the_tracker():
    """Docstrings, command output, scripts, notebooks and READMEs are read by people who cannot
    see the project's tracker: a number of it explains nothing to them."""
    from srnn.book.check import TRACKER
    sources = [*ROOT.glob("srnn/**/*.py"), *ROOT.glob("scripts/*.py"), *ROOT.glob("experiments/*"),
               *ROOT.glob("book/notebooks/*.py"), *ROOT.glob("book/*.md"), *ROOT.glob("book/pages/*"),
               *ROOT.glob("*.md"), *ROOT.glob("data/**/*.md"), *ROOT.glob("results/**/*.md")]
    found = [f"{p.relative_to(ROOT)}: {m.group(0)!r}" for p in sources if p.is_file()
             for m in TRACKER.finditer(p.read_text(errors="replace"))]
    assert not found, found
