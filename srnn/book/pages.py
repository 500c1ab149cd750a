"""What a page of the book runs and shows: its runs' records, or how to make a missing one.

A page trains through :func:`train_run`, which runs ``python -m srnn.experiment``'s command
line with the page's settings (so every record carries the exact command that remakes it)
and takes the record from that call. A page
names its runs by id (``results/<domain>/<id>/run.json``). It shows the committed
record (under ``results/``, trained with the paper's settings) when there is one and, in
a batch whose profile records elsewhere (``smoke``: ``runs/smoke/results``), also the
record that batch just trained, labelled with its profile. A run that has no committed
record is reported with the command that makes it, never silently left out; where only its
first-protocol record exists (``<id>-legacy``, made before issue 10), that one is shown and
labelled as such.
"""
from __future__ import annotations

import json
from pathlib import Path

from .. import experiment
from ..datasets import speech
from ..records.store import load_run, run_name
from ..records.tables import departures, protocol

COMMITTED = "results"
# The baselines a page can name as a variant: the model of its preset and the settings on top.
BASELINE_VARIANTS = {"VRNN": ("vrnn", {}), "VRNN-I": ("vrnn", {"vrnn_prior": "standard"}), "RNN": ("rnn", {}),
             "VRNN-GMM": ("vrnn_gmm", {}), "RNN-GMM": ("rnn_gmm", {})}
PERMUTE_SEED = 1     # the within-frame permutation of a "<corpus>-perm" data set (Dai et al. 2019)
LEGACY = "-legacy"       # the id suffix of the runs made with this project's first protocol
FIRST_GROUP = "committed, first protocol"


def find_record(domain: str, run_id: str, results_dir: str = COMMITTED) -> dict | None:
    """The record of ``run_id`` under ``results_dir``, or None where there is none yet."""
    path = Path(results_dir) / domain / run_id / "run.json"
    return load_run(path) if path.is_file() else None


def committed_record(domain: str, run_id: str) -> dict | None:
    """The committed record of ``run_id`` or, where the run has not been remade with the
    original code's protocol yet, its first-protocol record ``<id>-legacy`` (None if neither)."""
    return find_record(domain, run_id) or find_record(domain, run_id + LEGACY)


def batch_record(domain: str, run_id: str, results_dir: str) -> dict | None:
    """The record this batch wrote, when its profile records elsewhere than results/."""
    return None if Path(results_dir) == Path(COMMITTED) else find_record(domain, run_id, results_dir)


def missing_run(title: str, domain: str, run_id: str, page: str, corpus_env: str = "") -> str:
    """Markdown for a run that has no committed record: what is missing and the command."""
    env = f"{corpus_env}=/path/to/the/corpus " if corpus_env else ""
    return (f"**No committed run yet** for {title}: `{COMMITTED}/{domain}/{run_id}/run.json` does not "
            f"exist. To make it, run on a GPU box\n\n"
            f"```bash\n{env}python -m srnn.runner --profile paper --pages {page}\n```\n\n"
            f"and commit `{COMMITTED}/{domain}/{run_id}/`.")


def run_summary(record: dict) -> str:
    """Markdown: what the run is, where and how long it ran, and the command that remakes it."""
    still = " (still improving)" if record["still_improving"] else ""
    first = ("**A run of this project's first protocol** (made before issue 10, see the Results page; "
             "no run with the original code's protocol is committed yet). " if protocol(record) == "first" else "")
    changed = departures(record)
    if changed:
        first += f"**Not the paper's settings** ({', '.join(changed)}): not comparable with the paper's tables. "
    return (f"{first}Run `{record['id']}`, profile `{record['profile']}`: {record['epochs']} epochs on "
            f"{record['hardware']['device']} in {record['wall_time_s'] / 60:.1f} min; best validation "
            f"bound at epoch {record['best_epoch']}{still}. Reproduce with `{record['command']}`."
            + missing_history(record))


def missing_history(record: dict) -> str:
    """Markdown saying that the run's ``history.jsonl`` is missing (so no learning curve is
    drawn), or nothing when its history is there."""
    if record.get("history") or "path" not in record:       # read from its folder, or made in memory
        return ""
    history = Path(record["path"]) / "history.jsonl"
    return (f" **No learning curve**: `{history}` is missing, so this run's epochs cannot be shown; restore "
            f"it (`git checkout -- {history}`) or rerun the command above.")


def train_run(domain: str, dataset: str, *, preset_name: str, overrides: dict, profile: str, device: str,
              runs_dir: str, results_dir: str, form: str = "npz", variant: str = "smooth+Resq",
              name: str = "", iwae_samples: int = 1, corpus: str = "") -> dict:
    """Train one run with ``srnn.experiment`` (resuming a partial one) and return its record.

    Speech data are prepared first under ``<runs_dir>/data``: the embedded sample, or the
    TIMIT / Blizzard corpus found in the folder ``corpus``; ``<corpus>-perm`` (e.g.
    ``sample-perm``) permutes the samples within every frame. A ``variant`` may also name a
    baseline (VRNN, VRNN-I, RNN, VRNN-GMM, RNN-GMM): its preset is the baseline's of ``preset_name``.
    """
    if domain == "music":
        data = ["--dataset", dataset, "--form", form]
    else:
        out = Path(runs_dir) / "data"
        corpus_name, _, permuted = dataset.partition("-")     # "sample-perm": within-frame permutation
        permute = {"permute_seed": PERMUTE_SEED} if permuted == "perm" else {}
        prepared = speech.prepare_sample(out, **permute) if corpus_name == "sample" else \
            getattr(speech, f"prepare_{corpus_name}")(corpus, out, **permute)
        data = ["--prepared", str(prepared)]
    if variant in BASELINE_VARIANTS:         # a baseline: its own preset, sized like SRNN's
        model, extra = BASELINE_VARIANTS[variant]
        model_args, overrides = ["--preset", f"{model}_{preset_name}"], {**overrides, **extra}
    else:
        model_args = ["--preset", preset_name, "--variant", variant]
    argv = [domain, *data, *model_args,
            "--set", f"device={device}", *(f"{k}={json.dumps(v)}" for k, v in overrides.items()),
            "--iwae-samples", str(iwae_samples), "--profile", profile,
            "--runs", runs_dir, "--results", results_dir, *(["--name", name] if name else [])]
    # A user error reaches the runner as itself (its one line names what is wrong), not as a bare exit
    # status; wait_busy: a page beside this one may be training the same run.
    record, folder = experiment.run_command(argv, wait_busy=True)
    if record["id"] != run_name(domain, dataset, form, variant, name):
        raise RuntimeError(f"srnn.experiment named the run {record['id']!r}, srnn.records.store.run_name says "
                           f"{run_name(domain, dataset, form, variant, name)!r}: make them agree")
    return load_run(Path(folder) / "run.json")      # as every record is read: with its history and path


def run_groups(specs: list[dict], *, domain: str, dataset: str, page: str, train: bool, results_dir: str,
               form: str = "npz", **settings) -> tuple[dict[str, dict[str, dict]], list[str]]:
    """The runs a comparison page shows, grouped: ``"committed"`` (results/), ``FIRST_GROUP``
    (the first-protocol records of the specs, while some spec has no committed record with
    the original protocol) and, when this batch trains and records elsewhere, its profile's
    name. Each spec has a ``label`` and
    may give the run's ``name`` suffix, ``variant`` and ``overrides``; ``settings`` are the
    rest of :func:`train_run`'s keywords. Also returns the notes for runs never committed."""
    def args(spec):
        return {"form": form, "variant": spec.get("variant", "smooth+Resq"), "name": spec.get("name", "")}

    fresh = {s["label"]: train_run(domain, dataset, overrides=s.get("overrides", {}), results_dir=results_dir,
                                   **args(s), **settings) for s in specs} if train else {}
    committed, first, notes = {}, {}, []
    for s in specs:
        found = find_record(domain, run_name(domain, dataset, **args(s)))
        old = find_record(domain, run_name(domain, dataset, **args(s)) + LEGACY)
        if found is None:
            notes.append(missing_run(s["label"], domain, run_name(domain, dataset, **args(s)), page))
        else:
            committed[s["label"]] = found
        if old is not None:
            first[s["label"]] = old
    groups = {"committed": committed, **({FIRST_GROUP: first} if first and len(committed) < len(specs) else {})}
    if fresh and Path(results_dir) != Path(COMMITTED):
        groups[settings["profile"]] = fresh
    return groups, notes


def committed_models(models: dict[str, list[str]], *, domain: str, page: str,
                     results_dir: str) -> tuple[dict[str, dict[str, dict]], list[str]]:
    """Per data set (``models``: data set -> model variants), the committed record of each
    variant that has one, by variant; and the notes for those never committed."""
    committed, notes = {}, []
    for dataset, names in models.items():
        groups, missing = run_groups([{"label": m, "variant": m} for m in names], domain=domain, dataset=dataset,
                                     page=page, train=False, results_dir=results_dir)
        committed[dataset], notes = groups["committed"], notes + missing
    return committed, notes
