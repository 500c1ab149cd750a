"""The release: the chosen models exported with their cards, and one archive to cite.

    python -m srnn.release export runs/jsb-npz-smooth-resq-batch8-drop-dz   # a chosen run's model
    python -m srnn.release archive                                         # dist/srnn-<version>.tar.gz

``export`` takes a run of the search protocol's choice (:mod:`srnn.records.grid`: the grid
complete for that set and model, the run being the chosen setting's paper-seed run), or a
set's RNN run with the paper's settings and seed (the RNN is not searched), and its
committed record, checks that ``best.pt`` is that record's model, and writes the shipped
8-bit copy and the model card into ``data/pretrained/``, the exact float32 copy into the
cache, and the model's entry into ``data/pretrained/models.json``. Before it writes
anything, the float32 copy must give the record's test bound exactly, and the 8-bit copy's
bound by the same computation goes on the card.

``archive`` packs what a reviewer cites: the source of the commit (code, every record, the
shipped models and cards), the exact float32 weights of every released model, the executed
book's HTML (built from this commit), ``CITATION.cff`` with the ``.zenodo.json`` an archive
mints a DOI from, and ``SHA256SUMS`` of every file. It refuses a tree with changes not
committed.
"""
from __future__ import annotations

import datetime
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import torch

from .config import Config
from .datasets.music import dataset as music_dataset
from .datasets.registry import cache_dir, check, data_dir
from .errors import ArgumentParser, UserError, command_line
from .files import read_json, write_atomic, write_json
from .pretrained import FORMAT, Released, load_file, quantize, release_name, released
from .publish import STAMP, git
from .records import grid
from .records.model_comparison import MODEL_TITLES
from .records.paper import MUSIC_NAMES
from .records.store import load_runs, run_name
from .records.tables import main_run
from .records.tables import setting as setting_words
from .training.checkpoint import check_identity, load_checkpoint
from .training.evaluate import recorded_elbo

ROOT = Path(__file__).resolve().parents[1]
PAPER_DOI = "10.48550/arXiv.1605.07571"


class ReleaseError(UserError, ValueError):
    """A model or a tree that cannot be released as asked."""


def chosen_run(record: dict, runs: list[dict]) -> str:
    """The release name of a record that is its set and model's choice; refuses any other.
    SRNN and VRNN are chosen by the search protocol; the RNN, well behind both and never
    searched, is its set's run with the paper's settings and seed."""
    dataset, variant = record.get("dataset"), record.get("variant")
    if dataset in grid.SETS and variant == "RNN":
        main = main_run(runs, dataset, variant="RNN")
        if main is None or main["id"] != record["id"] or record["seed"] != grid.GRID_SEED:
            raise ReleaseError(f"{record['id']} is not the RNN released for {dataset}: the RNN keeps the paper's "
                               f"settings and seed (the run {run_name('music', dataset, 'npz', 'RNN')})")
        return release_name(dataset, variant)
    if dataset not in grid.SETS or variant not in grid.MODELS:
        raise ReleaseError(f"{record['id']} is not a run of the search protocol (a music set's SRNN or VRNN on the "
                           f"authors' arrays) nor a set's RNN: only the protocol's choices are released")
    found = grid.search(runs, dataset, variant)
    if not found["complete"]:
        missing = [grid.command(dataset, variant, s) for s, r in found["points"].items() if r is None]
        raise ReleaseError(f"the search for {dataset} {variant} is not complete, so nothing is chosen yet; "
                           f"run first: {'; '.join(missing)}")
    best = found["points"][found["chosen"]]
    if best["id"] != record["id"]:
        raise ReleaseError(f"{record['id']} is not the choice for {dataset} {variant}: the protocol chose "
                           f"{best['id']} (best validation bound)")
    return release_name(dataset, variant)


def export(run_dir: str | Path, results: str | Path = "results", out_dir: str | Path | None = None,
           cache: str | Path | None = None, progress: bool = True) -> Released:
    """Export the model of ``run_dir/best.pt`` (see the module's text); returns its entry."""
    run_dir = Path(run_dir)
    record_path = Path(results) / "music" / run_dir.name / "run.json"
    if not record_path.is_file():
        raise ReleaseError(f"no committed record {record_path} for the run {run_dir}: only recorded runs are released")
    record = read_json(record_path)
    name = chosen_run(record, load_runs(results))
    path = run_dir / "best.pt"
    ckpt = load_checkpoint(path)
    # Checkpoints older than the data fingerprint's place in them are bound to their data by the
    # record's best epoch and validation bound, and by the test bound the float32 copy must give.
    check_identity({**ckpt, "data": ckpt.get("data", record["data"])}, Config.from_dict(record["config"]),
                   record["data"], path, "export it")
    saved = ckpt["history"][-1]
    if (saved["epoch"], saved["valid_elbo_per_step"]) != (record["best_epoch"], record["valid_best"]["elbo_per_step"]):
        raise ReleaseError(f"{path} holds epoch {saved['epoch']} (validation {saved['valid_elbo_per_step']}), "
                           f"the record's best is epoch {record['best_epoch']} "
                           f"({record['valid_best']['elbo_per_step']}): it is not that run's model")
    head = {"format": FORMAT, "config": ckpt["config"], "data": record["data"], "run": record["id"],
            "code": record["code"], "best_epoch": record["best_epoch"]}
    stored = {k: quantize(v) for k, v in ckpt["model"].items()}
    small = _bytes({**head, "model": {k: q for k, (q, _) in stored.items()},
                    "scales": {k: s for k, (_, s) in stored.items() if s is not None}})
    exact = _bytes({**head, "model": {k: v.float() for k, v in ckpt["model"].items()}, "scales": {}})

    out_dir = Path(out_dir) if out_dir else data_dir() / "pretrained"
    entry = {"dataset": record["dataset"], "variant": record["variant"], "run": record["id"],
             "seed": record["seed"], "paths": record["test"].get("paths", 1),
             "record_test": record["test"]["elbo_per_step_seq"],
             "shipped": _file_entry(f"{record['id']}.pt", small),
             "exact": _file_entry(f"{record['id']}.float32.pt", exact)}
    data = music_dataset(record["dataset"], "npz", batch_size=record["config"]["batch_size"],
                         window=record["config"]["window"])
    scores = {}                                     # both copies measured before anything is written
    for copy, content in (("exact", exact), ("shipped", small)):
        model = load_file(io.BytesIO(content))
        scores[copy] = recorded_elbo(model, data.test, entry["seed"], entry["paths"], progress)["elbo_per_step_seq"]
    if scores["exact"] != record["test"]["elbo_per_step_seq"]:
        raise ReleaseError(f"the float32 copy of {record['id']} scores {scores['exact']!r} on the test set, its "
                           f"record {record['test']['elbo_per_step_seq']!r}: export it as the record was "
                           f"made: on {record['hardware']['device']}, with OMP_NUM_THREADS="
                           f"{record['hardware']['torch_threads']}")
    entry["shipped_test"] = scores["shipped"]
    write_atomic(out_dir / entry["shipped"]["file"], small)
    write_atomic(cache_dir(cache) / entry["exact"]["file"], exact)
    listed = read_json(out_dir / "models.json") if (out_dir / "models.json").is_file() else {}
    listed[name] = entry
    write_json(out_dir / "models.json", dict(sorted(listed.items())), indent=2)
    model = Released.from_entry(name, entry)
    write_atomic(out_dir / f"{name}.md", card(model, record).encode())
    return model


def _bytes(obj: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _file_entry(name: str, data: bytes) -> dict:
    return {"file": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def card(model: Released, record: dict) -> str:
    """The model card of a released model, from its entry and its committed record."""
    title = f"{MODEL_TITLES[model.variant]} on {MUSIC_NAMES[model.dataset]}"
    test = record["test"]
    if model.variant == "RNN":                 # no latent state: the bound is the exact log-likelihood
        how = "is the RNN's exact log-likelihood: no sample is drawn"
        chosen = (f"The RNN is not searched: it keeps the paper's settings\nand seed ({record['seed']}), "
                  f"well behind SRNN and VRNN on every set.")
    else:
        paths = "one sample path" if model.paths == 1 else f"the mean over {model.paths} sample paths"
        how = f"is {paths}, drawn after seeding with {model.seed}, as the record computed it"
        words = setting_words(record) or "the paper's settings"
        chosen = (f"Its setting is the one the search protocol\n(`srnn/records/grid.py`) chose on the validation "
                  f"bound among the same four settings tried for\nevery set and model: {words}, with the paper's "
                  f"seed {record['seed']}.")
    se = f" ± {test['elbo_per_step_seq_se']:.4f}" if "elbo_per_step_seq_se" in test else ""
    iwae = (f"{test['iwae_per_step_seq']:.4f} (K = {test['iwae_samples']})" if "iwae_per_step_seq" in test
            else "not computed")
    gap = model.shipped_test - test["elbo_per_step_seq"]
    data = record["data"]
    hours = record["wall_time_s"] / 3600
    hw = record["hardware"]
    threads = f"{hw['torch_threads']} thread" + ("s" if hw["torch_threads"] != 1 else "")
    return f"""# `{model.name}`: {title}

{title}, as this project trained it: the committed run `results/music/{model.run}/`
(its `run.json` holds every number below) at its best validation epoch
({record['best_epoch']} of {record['epochs']}). {chosen}

## Numbers

Test bounds per time step, the mean over the {test['sequences']} test pieces, in nats (the ELBO
{how}):

| copy | size | test ELBO per step | IWAE per step |
|---|---|---|---|
| the run's `best.pt` (the record) | | {test['elbo_per_step_seq']:.4f}{se} | {iwae} |
| exact: float32 (archive) | {model.exact.size / 1e6:.1f} MB | the record's, to the last digit | the record's |
| shipped: 8-bit (package) | {model.shipped.size / 1e6:.1f} MB | {model.shipped_test:.4f} ({gap:+.4f}) | not measured |

The exact copy is `weights/{model.exact.name}` in the release archive; the shipped one is
`data/{model.shipped.shipped}`.

`srnn evaluate --pretrained {model.name} music` computes the ELBO of
the copy it loads: the exact one where it is in the cache (`$SRNN_CACHE`, default
`~/.cache/srnn`), the shipped one otherwise. The shipped copy stores every weight matrix as int8
with a float16 scale per row and the vectors as float16.

## Data, config and code

- Data: {MUSIC_NAMES[model.dataset]} as the SRNN authors' arrays (`{data['file']}`, sha256
  `{data['sha256']}`); the record's fingerprint names each split's content.
- Config: `results/music/{model.run}/run.json`, field `config`; the command:
  `{record['command']}`.
- Code: commit `{record['code']['commit']}`; trained and tested on {hw['device']}
  ({hw.get('cpu') or hw.get('gpu', '')}, {threads}, torch {hw['torch']}) in {hours:.1f} hours.
- Files (sha256): shipped `{model.shipped.sha256}`, exact `{model.exact.sha256}`.

## Use

    from srnn.pretrained import load_pretrained
    model = load_pretrained("{model.name}")
    srnn generate --pretrained {model.name} --pieces 4 --out pieces
    srnn generate --pretrained {model.name} --continue-piece 0 --out continued

Intended for research: scoring, sampling and continuing 88-key piano rolls of the kind it was
trained on (one step per quantized time step of its data set), and as a baseline or starting
point for work on sequence models. Limits: it knows only the notes and rhythms of the
training pieces of {MUSIC_NAMES[model.dataset]}; its pieces have no dynamics, tempo or
instruments; its bounds are lower bounds on the log-likelihood, comparable only with bounds
computed the same way on the same arrays.

## License

The weights: MIT, as this project. The training data: the SRNN authors' arrays, from their
repository (github.com/marcofraccaro/srnn, MIT), derived from the data set of
Boulanger-Lewandowski et al. (2012).
"""


def zenodo(citation: dict, version: str, date: str, repository: str) -> dict:
    """The ``.zenodo.json`` of a release, from ``CITATION.cff``'s fields."""
    creators = [{"name": a.get("name") or f"{a['family-names']}, {a['given-names']}"} for a in citation["authors"]]
    return {"upload_type": "software", "title": citation["title"], "creators": creators,
            "description": citation["message"], "version": version, "publication_date": date,
            "license": citation["license"], "access_right": "open",
            "keywords": ["variational autoencoder", "state space model", "recurrent neural network",
                         "polyphonic music", "speech", "reproduction"],
            "related_identifiers": [
                {"identifier": PAPER_DOI, "relation": "references", "scheme": "doi", "resource_type": "publication"},
                {"identifier": repository, "relation": "isSupplementTo", "scheme": "url"}]}


def archive(root: Path = ROOT, out: Path | None = None, cache: str | Path | None = None,
            date: str | None = None) -> Path:
    """Write ``dist/srnn-<version>.tar.gz`` (see the module's text); returns its path."""
    import yaml

    if git("status", "--porcelain", cwd=root):
        raise ReleaseError(f"{root} has changes not committed (git status): a release is made from a commit alone")
    commit = git("rev-parse", "HEAD", cwd=root)
    citation = yaml.safe_load((root / "CITATION.cff").read_text())
    version = _version(root)
    if str(citation.get("version")) != version:
        raise ReleaseError(f"CITATION.cff says version {citation.get('version')}, pyproject.toml {version}: "
                           f"make them the same")
    html = root / "book" / "_build" / "html"
    built = (html / STAMP).read_text().strip() if (html / STAMP).is_file() else None
    if built != commit:
        raise ReleaseError(f"{html} was built from {built or 'an unknown commit'}, not {commit[:10]}: "
                           f"run `make book` first")
    models = released(root / "data")
    weights = {}
    for model in models.values():
        path = cache_dir(cache) / model.exact.name
        problem = check(path, model.exact) if path.is_file() else "it is not there"
        if problem:
            raise ReleaseError(f"the exact copy of {model.name!r} ({path}) cannot go in: {problem}; remake it with "
                               f"`python -m srnn.release export runs/{model.run}` (the run's best.pt; rerun the "
                               f"record's command to train it again)")
        weights[model.exact.name] = path
    out = Path(out) if out else root / "dist" / f"srnn-{version}.tar.gz"
    if out.exists():
        raise ReleaseError(f"{out} exists: remove it, or raise the version in pyproject.toml and CITATION.cff")
    date = date or datetime.date.today().isoformat()
    files: dict[str, tuple[bytes, int]] = {}                     # name in the archive -> (content, mode)
    source = subprocess.run(["git", "archive", "--format=tar", commit], cwd=root, capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(source.stdout)) as tree:
        for info in tree.getmembers():
            if info.isfile():
                files[f"source/{info.name}"] = tree.extractfile(info).read(), info.mode
    for path in sorted(html.rglob("*")):
        if path.is_file() and not {".buildinfo", ".doctrees"} & {path.name, *path.relative_to(html).parts}:
            files[f"book/{path.relative_to(html).as_posix()}"] = path.read_bytes(), 0o644
    for name, path in weights.items():
        files[f"weights/{name}"] = path.read_bytes(), 0o644
    repository = yaml.safe_load((root / "_config.yml").read_text())["repository"]["url"]
    files["CITATION.cff"] = (root / "CITATION.cff").read_bytes(), 0o644
    files[".zenodo.json"] = json.dumps(zenodo(citation, version, date, repository), indent=2).encode(), 0o644
    files["README.md"] = _readme(version, commit, date, models).encode(), 0o644
    files["SHA256SUMS"] = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n"
                                  for name, (data, _) in sorted(files.items())).encode(), 0o644
    when = int(git("show", "-s", "--format=%ct", commit, cwd=root))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as packed:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(f"srnn-{version}/{name}")
            info.size, info.mode, info.mtime = len(data), mode, when
            packed.addfile(info, io.BytesIO(data))
    return write_atomic(out, buffer.getvalue())


def _version(root: Path) -> str:
    import tomllib
    return tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]


def _readme(version: str, commit: str, date: str, models: dict[str, Released]) -> str:
    lines = "\n".join(f"  - `{m.name}`: `weights/{m.exact.name}` (the run `{m.run}`; card: "
                      f"`source/data/pretrained/{m.name}.md`)" for m in models.values()) or "  - (none yet)"
    return f"""# srnn {version}

A reproduction of "Sequential Neural Models with Stochastic Layers" (Fraccaro et al., NIPS 2016)
in PyTorch, released {date} from commit {commit}.

- `source/`: the code at that commit, with every run's record (`source/results/`), the shipped
  8-bit models and their cards (`source/data/pretrained/`). Its README says how to install it.
- `weights/`: the exact float32 weights of the released models, which give their records'
  test bounds exactly. Copy them into `~/.cache/srnn` (or `$SRNN_CACHE`) and
  `load_pretrained(NAME)` and `srnn ... --pretrained NAME` use them;
  `srnn evaluate --pretrained NAME music` prints the record's test bound beside the one it computes:
{lines}
- `book/`: the executed book, as HTML (open `book/index.html`).
- `CITATION.cff`, `.zenodo.json`: how to cite it, and the archive's metadata.
- `SHA256SUMS`: the sha256 of every other file (`sha256sum -c SHA256SUMS`).
"""


@command_line
def main(argv: list[str], prog: str = "python -m srnn.release") -> int:
    parser = ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True, metavar="{export,archive}")
    ex = steps.add_parser("export", help="export a chosen run's model: shipped copy, card, exact copy, list entry")
    ex.add_argument("run_dir", help="the run's folder, holding its best.pt "
                                    "(e.g. runs/jsb-npz-smooth-resq-batch8-drop-dz)")
    ex.add_argument("--results", default="results", help="the committed records (default: results)")
    ar = steps.add_parser("archive", help="pack the release archive of the current commit")
    ar.add_argument("--out", type=Path, help="the archive to write (default: dist/srnn-<version>.tar.gz)")
    args = parser.parse_args(argv)
    if args.step == "export":
        model = export(args.run_dir, args.results)
        print(f"{model.name}: data/{model.shipped.shipped} ({model.shipped.size:,} bytes), card "
              f"data/pretrained/{model.name}.md, exact copy {cache_dir() / model.exact.name} "
              f"({model.exact.size:,} bytes); the shipped copy scores {model.shipped_test:.4f}")
    else:
        path = archive(out=args.out)
        print(f"{path}: {path.stat().st_size:,} bytes; upload it with its .zenodo.json to mint a DOI")
    return 0


if __name__ == "__main__":
    sys.exit(main())
