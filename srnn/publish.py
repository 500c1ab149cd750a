"""Build the book's HTML and publish it on a ``gh-pages`` branch: step 2 of ``make book``, and ``make publish``.

    python -m srnn.publish build                  # jupyter-book build book/, then check the HTML
    python -m srnn.publish push                   # the built HTML to the gh-pages branch of origin
    python -m srnn.publish push --remote /path/to/bare.git --branch gh-pages

``build`` refuses a Jupyter Book other than 1.x (2.x prints an error for this book and exits
0, so a build job would pass with no book), builds with warnings as errors, and runs
:mod:`srnn.book.check` over the result. ``push`` commits the built HTML (with ``.nojekyll``,
so that GitHub Pages serves ``_static/`` as it is) as the single commit of the branch,
naming the commit of the clone it was built from, and force-pushes it: the branch holds the
latest book only. The notebooks must have been executed first (``python -m srnn.runner``,
or ``make book``, which runs both steps). The workflow ``.github/workflows/book.yml``
builds the same book and deploys it with GitHub's own Pages action instead.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from .book.check import check_book
from .errors import ArgumentParser, UserError, command_line

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "book" / "_build" / "html"
STAMP = "BUILT_FROM"                 # in the built HTML: the commit it was built from


def check_jupyter_book() -> str:
    """The installed Jupyter Book's version; anything but 1.x is refused."""
    try:
        version = metadata.version("jupyter-book")
    except metadata.PackageNotFoundError:
        raise UserError("jupyter-book is not installed: pip install -e '.[book]' (make book does it)") from None
    if version.split(".")[0] != "1":
        raise UserError(f"jupyter-book {version} is installed; this book builds with Jupyter Book 1 "
                        f"(pip install 'jupyter-book>=1.0.4,<2', as constraints.txt pins it)")
    return version


def build(root: Path = ROOT) -> Path:
    """``jupyter-book build book/`` with warnings as errors, then the checks of the HTML."""
    check_jupyter_book()
    if not (root / "book" / "_toc.yml").is_file():
        raise UserError(f"{root} has no book/_toc.yml: building the book needs a clone of the repository")
    command = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or shutil.which("jupyter-book")
    done = subprocess.run([command, "build", "book/", "-W", "-n", "--keep-going"], cwd=root)
    html = root / "book" / "_build" / "html"
    if done.returncode != 0 or not (html / "index.html").is_file():
        raise UserError(f"jupyter-book build failed (exit status {done.returncode}); see its output above")
    problems = check_book(html)
    if problems:
        raise UserError(f"the built book has {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    (html / STAMP).write_text(built_from(root) + "\n")
    print(f"The book is at file://{html}/index.html")
    return html


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise UserError(f"git {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def built_from(root: Path) -> str:
    """The commit a build of ``root`` shows, marked where the tree has changes not committed
    (the release archive takes only a book built from its commit)."""
    if not (root / ".git").exists():
        return "not a git clone"
    commit = git("rev-parse", "HEAD", cwd=root)
    return commit + (" with changes not committed" if git("status", "--porcelain", cwd=root) else "")


def push(html: Path = HTML, remote: str = "origin", branch: str = "gh-pages", root: Path = ROOT) -> str:
    """Commit ``html`` as the only commit of ``branch`` and force-push it to ``remote`` (a
    remote of the clone at ``root`` or a URL or path); returns the pushed commit."""
    if not (html / "index.html").is_file():
        raise UserError(f"{html} holds no built book: run `make book` first")
    source = git("rev-parse", "--short", "HEAD", cwd=root) if (root / ".git").exists() else "an unknown commit"
    url = remote
    if not any(c in remote for c in ":/\\") and (root / ".git").exists():
        url = git("remote", "get-url", remote, cwd=root)
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        shutil.copytree(html, site, ignore=shutil.ignore_patterns(".buildinfo", ".doctrees"))
        (site / ".nojekyll").write_text("")
        git("init", "-q", "-b", branch, cwd=site)
        git("add", "-A", cwd=site)
        git("-c", "user.name=srnn publish", "-c", "user.email=publish@localhost", "commit", "-q", "-m",
            f"The book, built from {source}", cwd=site)
        git("push", "-q", "--force", url, f"HEAD:refs/heads/{branch}", cwd=site)
        return git("rev-parse", "HEAD", cwd=site)


@command_line
def main(argv: list[str], prog: str = "python -m srnn.publish") -> int:
    parser = ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True, metavar="{build,push}")
    steps.add_parser("build", help="build book/_build/html (Jupyter Book 1, warnings as errors) and check it")
    up = steps.add_parser("push", help="force-push the built HTML as the only commit of a branch")
    up.add_argument("--remote", default="origin", help="a remote of this clone, or a URL or path (default: origin)")
    up.add_argument("--branch", default="gh-pages", help="the branch to replace (default: gh-pages)")
    up.add_argument("--html", type=Path, default=HTML, help="the built book (default: book/_build/html)")
    args = parser.parse_args(argv)
    if args.step == "build":
        build()
    else:
        commit = push(args.html, args.remote, args.branch)
        print(f"pushed {args.html} to {args.remote} {args.branch} as {commit[:10]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
