"""Execute the book's notebooks as one batch with papermill: step 1 of ``make book``.

    python -m srnn.runner --profile smoke     # tiny settings, minutes on a CPU
    python -m srnn.runner --profile paper     # the paper's settings, on the GPU when there is one

The notebooks are jupytext percent-format sources, ``book/notebooks/<notebook>.py``,
each with one cell tagged ``parameters``. A page of the book that runs code is a file
``book/pages/<page>.yml``::

    notebook: training          # book/notebooks/training.py
    title: "Training: JSB Chorales"  # optional: replaces the notebook's first heading
    parameters: {dataset: jsb}  # for every profile
    smoke: {train: true}        # only for --profile smoke (overrides the above)
    paper: {train: true}

so one notebook can become several pages (one per data set). The runner converts each
source with jupytext in memory, injects the page's parameters, plus ``profile``,
``device``, ``runs_dir`` (where runs of this batch go, default ``runs/<profile>``) and
``results_dir`` (where their records go, see PROFILES) and ``page`` to the notebooks whose
parameters cell declares them, and writes the executed notebook to
``book/executed/<page>.ipynb``, a git-ignored folder that ``_toc.yml`` points at.
Notebooks run with the repository root as working directory. The parameters cell and the
injected one are tagged ``remove-cell``: the page opens with its text, and the executed
notebook keeps both.

The pages run in ``_toc.yml`` order. With ``--jobs N`` (by default one per visible GPU, or
one on a CPU machine), the pages of one part of the toc run side by side, N at a time, each
in its own process: job slot k sees only the k-th visible GPU (mod their number); the
parts still run one after the other, so that the Results pages find the runs of the
Training pages. Two pages that train the same run take turns. The first failing cell stops
the batch (pages already running finish) with the page, the source file, the cell and the
error named; the failed notebook is moved to
``book/executed/failed/`` so that the book cannot be built from it. With ``--launcher slurm``
the pages go to a SLURM cluster instead, one task per page and one job array per part,
each part after the one before (see :mod:`srnn.cluster`). This module is also
a Sphinx extension (``_config.yml`` loads it) that refuses to build a book whose
executed pages are missing or come from different profiles.
"""
from __future__ import annotations

import ast
import importlib.util
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from .errors import ArgumentParser, UserError, command_line

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
EXECUTED = BOOK / "executed"
# Where each profile's result records go: smoke runs are throwaway and never mix with the
# committed records under results/ that the Results page reads.
PROFILES = {"smoke": "{runs_dir}/results", "paper": "results"}
PAGE_KEYS = {"notebook", "title", "parameters", *PROFILES}
RERUN = "python -m srnn.runner --profile smoke"


def shown(path: Path) -> str:
    """``path`` relative to the repository root where it lies inside it, for messages."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


class BookError(UserError):
    """Bad input to the batch: the message names the file and the fix."""


@dataclass
class Page:
    """One executed page: a notebook source and the parameters papermill injects."""

    name: str
    source: Path
    parameters: dict
    title: str | None = None


def toc_parts(toc: Path) -> list[list[str]]:
    """The executed pages ``_toc.yml`` lists (``file: executed/<page>``), in reading order,
    grouped by the toc's parts (a toc without parts: one group per page)."""
    def walk(node, found):
        if isinstance(node, dict):
            file = node.get("file", "")
            if file.startswith("executed/"):
                found.append(file.removeprefix("executed/"))
            for value in node.values():
                walk(value, found)
        elif isinstance(node, list):
            for value in node:
                walk(value, found)
        return found

    spec = read_yaml(toc) or {}
    if isinstance(spec, dict) and isinstance(spec.get("parts"), list):
        return [pages for part in spec["parts"] if (pages := walk(part, []))]
    return [[page] for page in walk(spec, [])]


def toc_pages(toc: Path) -> list[str]:
    """The executed pages ``_toc.yml`` lists, in reading order."""
    return [page for part in toc_parts(toc) for page in part]


def read_yaml(path: Path):
    """The YAML in ``path``; a syntax error raises a BookError that names the file and line."""
    import yaml  # pyyaml, of the book extra

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise BookError(f"{shown(path)} is not UTF-8 text (byte {err.start} is {err.object[err.start]:#04x}); "
                        f"save it as UTF-8") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise BookError(f"{shown(path)}{where} is not valid YAML ({getattr(err, 'problem', None) or err}); "
                        f"fix the file") from None


def read_notebook(source: Path):
    """The jupytext source as an nbformat notebook, checked to have one parameters cell."""
    import jupytext

    if not source.is_file():
        raise BookError(f"notebook source {source} does not exist; create it or fix 'notebook:' in the page file")
    nb = jupytext.read(source)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(tagged) != 1:
        raise BookError(f"{source} must have exactly one cell tagged 'parameters' "
                        f"(# %% tags=[\"parameters\"]), found {len(tagged)}")
    return nb


def declared_parameters(nb) -> list[str]:
    """Names assigned at top level in the notebook's parameters cell."""
    return list(parameter_defaults(nb))


def parameter_defaults(nb) -> dict[str, object]:
    """Each name assigned at top level in the notebook's parameters cell, with its value
    where that is a literal (None where it is not)."""
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    found = {}
    for node in ast.parse(cell.source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        for t in targets:
            if isinstance(t, ast.Name):
                try:
                    found[t.id] = ast.literal_eval(node.value) if node.value is not None else None
                except ValueError:
                    found[t.id] = None
    return found


def _check_page_types(path: Path, spec: dict, parameters: dict, defaults: dict, source: Path) -> None:
    """Each field of a page file has the type a page file gives it, and each parameter the type of
    its default in the notebook's parameters cell (an int may stand for a float)."""
    for key, kind in (("notebook", str), ("title", str), ("parameters", dict), *((p, dict) for p in PROFILES)):
        if spec.get(key) is not None and not isinstance(spec[key], kind):
            raise BookError(f"{shown(path)}: '{key}' must be a {'mapping' if kind is dict else 'text'}, got "
                            f"{spec[key]!r}; fix the page file")
    for name, value in parameters.items():
        default = defaults.get(name)
        want = type(default)
        if default is None or value is None:
            continue
        fits = isinstance(value, want) and isinstance(value, bool) == (want is bool)
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            fits = True
        if not fits:
            raise BookError(f"{shown(path)}: parameter {name!r} must be {want.__name__} like its default "
                            f"{default!r} in the parameters cell of {shown(source)}, got {value!r}; fix the page file")


def retitle(nb, title: str, source: Path) -> None:
    """Replace the notebook's title (the ``# `` line opening its first markdown cell)."""
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if first is None or not first.source.startswith("# "):
        raise BookError(f"{source} must open with a markdown cell whose first line is its '# ' title "
                        "for a page file to give it another title")
    first.source = f"# {title}\n" + first.source.split("\n", 1)[1]


def load_page(path: Path, profile: str, injected: dict, notebooks: Path = BOOK / "notebooks") -> Page:
    """Read ``book/pages/<page>.yml`` for one profile and check its parameter names;
    ``injected`` (profile, device, runs_dir, results_dir) and ``page`` (the page's name) go
    to the notebooks that declare them."""
    if not path.is_file():
        raise BookError(f"_toc.yml lists executed/{path.stem} but {path} does not exist; "
                        "add the page file or remove the entry from _toc.yml")
    spec = read_yaml(path) or {}
    if not isinstance(spec, dict):
        raise BookError(f"{shown(path)} must be a mapping with 'notebook:' and parameters, not {type(spec).__name__}")
    unknown = sorted(set(spec) - PAGE_KEYS)
    if unknown or "notebook" not in spec:
        raise BookError(f"{path}: needs 'notebook:' and may only have the keys {sorted(PAGE_KEYS)}; "
                        f"found unknown keys {unknown}")
    _check_page_types(path, spec, {}, {}, notebooks)
    source = notebooks / f"{spec['notebook']}.py"
    parameters = {**(spec.get("parameters") or {}), **(spec.get(profile) or {})}
    defaults = parameter_defaults(read_notebook(source))
    declared = list(defaults)
    undeclared = sorted(set(parameters) - set(declared))
    if undeclared:
        raise BookError(f"{path}: parameter(s) {undeclared} are not in the parameters cell of {source}; "
                        f"its parameters are {declared}")
    _check_page_types(path, spec, parameters, defaults, source)
    context = {**injected, "page": path.stem}
    parameters.update({k: v for k, v in context.items() if k in declared})
    return Page(path.stem, source, parameters, spec.get("title"))


def execute_page(page: Page, profile: str, out_dir: Path) -> Path:
    """Run one page with papermill; on a failing cell raise a BookError that names it."""
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    nb = read_notebook(page.source)
    if page.title:
        retitle(nb, page.title, page.source)
    nb.metadata["srnn"] = {"page": page.name, "profile": profile, "source": shown(page.source)}
    hide_parameters(nb)
    target = out_dir / f"{page.name}.ipynb"
    partial = out_dir / f".{page.name}.partial.ipynb"     # renamed into place once the page has run
    try:
        papermill.execute_notebook(nb, str(partial), parameters=page.parameters, kernel_name="python3",
                                   language="python", cwd=str(ROOT), progress_bar=False,
                                   extra_arguments=["--IPKernelApp.log_level=ERROR"])  # no start-up chatter
    except PapermillExecutionError as err:
        failed = out_dir / "failed"
        failed.mkdir(exist_ok=True)
        partial.replace(failed / target.name)
        target.unlink(missing_ok=True)
        first_line = err.source.strip().splitlines()[0] if err.source.strip() else ""
        raise BookError(f"page {page.name!r} failed: {shown(page.source)}, cell "
                        f"In [{err.exec_count}] ({first_line!r}): {err.ename}: {err.evalue}\n"
                        f"the failed notebook is {failed / target.name}") from None
    executed = nbformat.read(partial, as_version=4)
    hide_parameters(executed)          # papermill's injected cell comes without the tag
    nbformat.write(executed, partial)
    partial.replace(target)
    return target


def hide_parameters(nb) -> None:
    """Tag the parameters cell and papermill's injected one ``remove-cell``: not shown on
    the page, kept in the executed notebook."""
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if {"parameters", "injected-parameters"} & set(tags) and "remove-cell" not in tags:
            tags.append("remove-cell")


def visible_gpus(device: str) -> list[str]:
    """The GPUs the batch may spread pages over: none for ``device`` cpu or on a machine
    without one, else the names ``CUDA_VISIBLE_DEVICES`` gives them (0, 1, ... when unset)."""
    if device == "cpu":
        return []
    import torch

    count = torch.cuda.device_count()
    names = os.environ.get("CUDA_VISIBLE_DEVICES")
    return names.split(",")[:count] if names is not None else [str(i) for i in range(count)]


def _take_slot(slots, gpus: list[str]) -> None:
    """A worker's start: take a job slot, and see only that slot's GPU."""
    slot = slots.get()
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]


def _timed(page: Page, profile: str, out_dir: Path) -> float:
    start = time.perf_counter()
    execute_page(page, profile, out_dir)
    return time.perf_counter() - start


def run_part(part: list[Page], profile: str, out_dir: Path, jobs: int, gpus: list[str], bar) -> dict[str, float]:
    """Run the pages of one part of the toc, ``jobs`` at a time, each in its own process with
    one of ``gpus`` (one page, or one job: here, one after the other); seconds per page."""
    seconds = {}
    if jobs == 1 or len(part) == 1:
        for page in part:
            bar.set_postfix_str(page.name)
            seconds[page.name] = _timed(page, profile, out_dir)
            bar.update()
        return seconds
    spawn = multiprocessing.get_context("spawn")
    slots = spawn.Queue()
    for slot in range(min(jobs, len(part))):
        slots.put(slot)
    bar.set_postfix_str(", ".join(page.name for page in part))
    with ProcessPoolExecutor(min(jobs, len(part)), mp_context=spawn, initializer=_take_slot,
                             initargs=(slots, gpus)) as pool:
        running = {pool.submit(_timed, page, profile, out_dir): page.name for page in part}
        for future in as_completed(running):
            if future.exception() is not None:
                pool.shutdown(cancel_futures=True)      # the pages already running finish
                raise future.exception()
            seconds[running[future]] = future.result()
            bar.update()
    return seconds


def plan_batch(profile: str, device: str, pages: list[str] | None = None, out_dir: Path = EXECUTED,
               runs_dir: Path | None = None, book: Path = BOOK) -> list[list[Page]]:
    """The pages to execute (the toc's, or the named subset), checked and loaded, grouped by
    the toc's parts in order (parts left empty by ``pages`` are dropped).

    A full batch first removes the executed pages of the toc from ``out_dir`` (and their
    failed copies), so that no page of an earlier batch survives it; nothing else there is
    touched. An empty ``pages`` list is refused: it is not the same as no list.
    """
    if profile not in PROFILES:
        raise BookError(f"unknown profile {profile!r}; choose one of {list(PROFILES)}")
    if pages is not None and not pages:
        raise BookError("no page named: give --pages one or more page names, or leave --pages out for the whole book")
    parts = toc_parts(book / "_toc.yml")
    names = [name for part in parts for name in part]
    unknown = sorted(set(pages or []) - set(names))
    if unknown:
        raise BookError(f"unknown page(s) {unknown}; _toc.yml lists {names}")
    orphans = sorted({p.stem for p in (book / "pages").glob("*.yml")} - set(names))
    if orphans:
        raise BookError(f"book/pages has page file(s) {orphans} that _toc.yml does not list; "
                        "add them to _toc.yml as executed/<page> or delete them")
    # Check every page before running any, so that a typo costs seconds, not a batch.
    runs_dir = str(runs_dir or Path("runs") / profile)
    injected = {"profile": profile, "device": device, "runs_dir": runs_dir,
                "results_dir": PROFILES[profile].format(runs_dir=runs_dir)}
    todo = [[load_page(book / "pages" / f"{n}.yml", profile, injected, book / "notebooks")
             for n in part if not pages or n in pages] for part in parts]
    # The notebooks' kernels inherit these (also on a cluster, where the jobs take this
    # environment): OpenMP threads that wait sleep instead of spinning, so that a page beside
    # another busy process does not burn its cores; and the smoke profile's tiny models train
    # on one thread, where a second one only adds waiting.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if profile == "smoke":
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    out_dir.mkdir(parents=True, exist_ok=True)
    if not pages:
        for name in names:
            for old in (out_dir / f"{name}.ipynb", out_dir / "failed" / f"{name}.ipynb"):
                old.unlink(missing_ok=True)
    return [part for part in todo if part]


def run_batch(profile: str, device: str, pages: list[str] | None = None,
              out_dir: Path = EXECUTED, runs_dir: Path | None = None, jobs: int | None = None,
              book: Path = BOOK) -> dict[str, float]:
    """Execute the toc's pages (or the named subset, see :func:`plan_batch`) in order, here;
    seconds per page. ``jobs``: how many pages of one part of the toc run at once (None: one
    per visible GPU, at least one)."""
    from tqdm import tqdm

    if jobs is not None and jobs < 1:
        raise BookError(f"--jobs must be at least 1, got {jobs}")
    todo = plan_batch(profile, device, pages, out_dir, runs_dir, book)
    gpus = visible_gpus(device)
    jobs = jobs or max(1, len(gpus))
    seconds = {}
    with tqdm(total=sum(map(len, todo)), desc=f"book ({profile})", unit="page") as bar:
        for part in todo:
            seconds.update(run_part(part, profile, out_dir, jobs, gpus, bar))
    return {page.name: seconds[page.name] for part in todo for page in part}


def check_executed_pages(book: Path) -> None:
    """Every executed page of the toc exists and all come from one profile."""
    import nbformat

    profiles = {}
    for name in toc_pages(book / "_toc.yml"):
        path = book / "executed" / f"{name}.ipynb"
        if not path.is_file():
            raise BookError(f"executed page {path} is missing: the notebooks have not run (or one failed); "
                            f"run `{RERUN}` first (or `make book`)")
        profiles[name] = nbformat.read(path, as_version=4).metadata.get("srnn", {}).get("profile")
    if len(set(profiles.values())) > 1:
        raise BookError(f"the executed pages come from different profiles {profiles}; rerun the whole batch")


def setup(app):
    """Sphinx extension: stop the build before it renders an incomplete batch."""
    from sphinx.errors import ExtensionError

    def check(app):
        try:
            check_executed_pages(Path(app.srcdir))
        except BookError as err:
            raise ExtensionError(str(err)) from None

    app.connect("builder-inited", check)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def check_clone() -> None:
    """The book's sources and the book extra are here, or a one-line error that says what to do."""
    if not (BOOK / "notebooks").is_dir() or not (ROOT / "_toc.yml").is_file():
        raise BookError("the book needs a clone of the repository (its book/ folder): run `make book` or "
                        "`python -m srnn.runner` there, with srnn installed from it (pip install -e '.[book]')")
    missing = [name for name in ("yaml", "jupytext", "papermill", "nbformat")
               if importlib.util.find_spec(name) is None]
    if missing:
        raise BookError(f"the book needs the book extra ({', '.join(missing)} not installed): "
                        "pip install -e '.[book]' in the clone, or make book")


@command_line
def main(argv: list[str], prog: str = "python -m srnn.runner") -> int:
    from . import cluster

    parser = ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--profile", required=True, help=f"one of {list(PROFILES)}")
    parser.add_argument("--device", default="auto",
                        help="torch device of the notebooks that train: auto (the GPU when there is one), cpu, cuda")
    parser.add_argument("--pages", nargs="+", help="run only these pages (default: all of _toc.yml)")
    parser.add_argument("--jobs", type=int, help="pages of one part of the book run at once, each on its own GPU "
                                                   "(default: one per visible GPU, one on a CPU machine)")
    parser.add_argument("--runs-dir", type=Path, help="where the notebooks write their runs (default: runs/<profile>)")
    cluster.add_options(parser, launcher=None)
    args = parser.parse_args(argv)
    check_clone()
    if args.launcher:           # one task per page, one job array per part (see srnn.cluster)
        if args.jobs is not None:
            parser.error("--jobs is for pages run here; with --launcher, --array-parallelism sets how many "
                         "pages run at once")
        todo = plan_batch(args.profile, args.device, args.pages, EXECUTED, args.runs_dir, BOOK)
        launch = cluster.Launch.from_args(args)
        jobs = cluster.submit_book(todo, args.profile, EXECUTED, launch, execute_page)
        print(f"{sum(map(len, jobs))} page(s) in {len(jobs)} part(s) {cluster.said_where(launch)}")
        return 0
    seconds = run_batch(args.profile, args.device, args.pages, runs_dir=args.runs_dir, jobs=args.jobs)
    for name, s in seconds.items():
        print(f"{s:7.1f} s  {name}")
    print(f"{sum(seconds.values()):7.1f} s  in all; executed pages are in {shown(EXECUTED)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
