"""What a page of the book runs and shows: its runs' records, or how to make a missing one.

A page trains through :func:`train_run`, which runs ``python -m srnn.experiment``'s command
line with the page's settings (so every record carries the exact command that remakes it)
and takes the record from that call. A page
names its runs by id (``results/<domain>/<id>/run.json``). It shows the committed
record (under ``results/``, trained with the paper's settings) when there is one and, in
a batch whose profile records elsewhere (``smoke``: ``runs/smoke/results``), also the
record that batch just trained, labelled with its profile. A run that has no committed
record is reported with the command that makes it, never silently left out; where only its
first-protocol record exists (``<id>-legacy``, made with the first protocol, before the
original code's protocol became the default), that one is shown and labelled as such.
"""
from __future__ import annotations

import json
from pathlib import Path

from .. import experiment
from ..datasets import speech
from ..records.store import load_run, load_runs, run_name
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


def missing_run(title: str, domain: str, run_id: str, page: str, corpus_env: str = "",
                first_protocol: bool = False) -> str:
    """Markdown for a run that has no committed record: what is missing and the command;
    ``first_protocol``: its first-protocol run is committed and shown instead."""
    env = f"{corpus_env}=/path/to/the/corpus " if corpus_env else ""
    head = (f"**{title}: only the first protocol's run is committed** (`{run_id}{LEGACY}`, shown on this page); "
            f"no run with the original code's protocol yet" if first_protocol else
            f"**No committed run yet** for {title}: `{COMMITTED}/{domain}/{run_id}/run.json` does not exist")
    return (f"{head}. To make it (at the paper's settings: hours on a GPU, longer on a CPU), run\n\n"
            f"```bash\n{env}python -m srnn.runner --profile paper --pages {page}\n```\n\n"
            f"and commit `{COMMITTED}/{domain}/{run_id}/`.")


def ran_on(record: dict) -> str:
    """Where a run ran, as its record names it: 'cpu: x86_64' or 'cuda: NVIDIA H100 80GB HBM3'.
    One seed follows different paths on different devices, so two runs of one label differ."""
    return record["hardware"]["device"]


def test_bound_note(domain: str) -> str:
    """What a training page's table of test bounds holds, for music or for speech."""
    if domain == "music":
        return ("Each test piece is scored whole, in one pass; the bound per step is the mean over pieces of each "
                "piece's bound divided by its length (the estimator of the paper's Table 2), then the bound summed "
                "over all test frames divided by their number, and the importance-weighted bound.")
    return ("The test scores each sequence in one pass with its first frame only an input, as the original code's "
            "TIMIT test; the column *windows* is the second estimator, windows that carry the state and score every "
            "frame, which is not comparable with the paper's Table 1. The table also divides the bound per step by "
            "the 200 samples of a frame: nats per sample on the normalized scale the model sees, and bits per sample "
            "of the raw waveform (floats in $[-1, 1]$, so $\\log p_{\\text{raw}} = \\log p_{\\text{norm}} - "
            "\\log \\sigma$), the unit of later benchmarks (Havtorn et al., 2022, in the References).")


def run_summary(record: dict) -> str:
    """Markdown: what the run is, where and how long it ran, and the command that remakes it."""
    still = " (still improving)" if record["still_improving"] else ""
    first = ("**A run of this project's first protocol** (made before the original code's protocol became the "
             "default; the page Before the original protocol lists how the two differ). No run with the original "
             "code's protocol is committed yet. " if protocol(record) == "first" else "")
    changed = departures(record)
    if changed:
        first += f"**Not the paper's settings** ({', '.join(changed)}): not comparable with the paper's tables. "
    epochs = f"{record['epochs']} epoch" + "s" * (record["epochs"] != 1)
    return (f"{first}Run `{record['id']}`, profile `{record['profile']}`: {epochs} on "
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


def sample_minutes(runs_dir: str) -> float:
    """Minutes of audio in the embedded speech sample, all splits together (prepared under
    ``<runs_dir>/data`` where it is not yet)."""
    prepared = speech.load_prepared(speech.prepare_sample(Path(runs_dir) / "data"), batch_size=1)
    return sum(split["seconds"] for split in prepared.manifest["splits"].values()) / 60


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
            notes.append(missing_run(s["label"], domain, run_name(domain, dataset, **args(s)), page,
                                     first_protocol=old is not None))
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


def chosen_setting(found: dict | None, paper_run: dict | None) -> tuple[str, list[str], list[tuple]]:
    """A training page's view of :func:`srnn.records.tables.chosen` for its set: a paragraph
    on the setting chosen on validation, and a table of the chosen setting's seeds (each with
    its device), their mean and spread, beside the paper-settings run and the paper's number."""
    from ..records.tables import setting

    headers = ["run", "setting", "seed", "device", "epochs (best)", "test ELBO / step (mean over pieces)"]
    if found is None:
        return ("No setting has been chosen on validation for this set yet: no committed run with the original "
                "code's protocol and the paper's seed.", headers, [])
    best = found["chosen"]
    text = (f"Besides the paper's settings, {len(found['candidates'])} setting(s) were trained on this set with the "
            f"paper's seed and compared on the best validation bound alone (the Results page lists them). The "
            f"chosen one is **{setting(best)}** (run `{best['id']}`, best validation ELBO per step "
            f"{best['valid_best']['elbo_per_step']:.3f}); it was rerun with {len(found['seeds']) - 1} other "
            f"seed(s) on the same kind of device, so that a setting can be told from a lucky seed.")
    row = lambda label, r: (label, setting(r), r["seed"], ran_on(r), f"{r['epochs']} ({r['best_epoch']})",
                            f"{r['test']['elbo_per_step_seq']:.3f}")
    rows = [row("paper's settings", paper_run)] if paper_run is not None and paper_run is not best else []
    rows += [row("chosen" if r is best else "chosen, another seed", r) for r in found["seeds"]]
    spread = "-" if found["std"] is None else f"sd {found['std']:.3f}"
    rows.append((f"chosen, mean over {len(found['seeds'])} seed(s)", setting(best), "-", "-", "-",
                 f"{found['mean']:.3f} ({spread})"))
    rows.append(("the paper's Table 2", "-", "-", "-", "-", f"{found['paper']:.2f}"))
    return text, headers, rows


def released_samples(folder: Path, seed: int = 0, steps: int = 64, prefix_steps: int = 16) -> list[dict]:
    """What every released model (:mod:`srnn.pretrained`) does: two new pieces and two
    continuations of the opening ``prefix_steps`` of its set's first test piece, each
    ``steps`` long, written by :func:`srnn.experiment.music_samples` under ``folder/<name>``
    (``new/`` and ``continued/``: ``rolls.npz``, MIDI files, the first piece as a WAV clip)."""
    import torch

    from ..datasets.music import pieces
    from ..pretrained import load_pretrained, released

    found = []
    for name, entry in released().items():
        model = load_pretrained(name)
        opening = torch.as_tensor(pieces(entry.dataset, "npz", "test")[0][:prefix_steps], dtype=torch.float32)
        torch.manual_seed(seed)
        experiment.music_samples(model, folder / name / "new", 2, steps)
        torch.manual_seed(seed)
        experiment.music_samples(model, folder / name / "continued", 2, steps - prefix_steps,
                                 prefix=opening[None].expand(2, -1, -1))
        found.append({"name": name, "dataset": entry.dataset, "variant": entry.variant, "run": entry.run,
                      "copy": model.copy, "folder": folder / name})
    return found


def variant_rankings(groups: dict, datasets: dict[str, str], variants, key: str) -> list[str]:
    """Markdown lines: the paper's ranking of the inference networks on speech (its Table 1),
    then ours per music set (``groups``: set -> runs group -> variant -> record) where every
    variant has a run, and how far the seed alone moves smooth+Resq's bound on each set."""
    from ..records.paper import PAPER_SPEECH
    from ..records.tables import seed_spread

    def ranking(scores: dict) -> str:
        return " > ".join(sorted(scores, key=scores.get, reverse=True))

    lines = [f"- {title} (the paper's Table 1): " + ranking({v: PAPER_SPEECH[v][corpus] for v in PAPER_SPEECH})
             for corpus, title in (("blizzard", "Blizzard"), ("timit", "TIMIT"))]
    for dataset, title in datasets.items():
        for group in ("committed", FIRST_GROUP):
            runs = groups[dataset].get(group, {})
            which = "ours" if group == "committed" else "ours, first protocol"
            if len(runs) == len(variants):
                scores = {v: runs[v]["test"][key] for v in variants}
                where = ", ".join(sorted({ran_on(r) for r in runs.values()}))
                lines.append(f"- {title} ({which}, {where}): {ranking(scores)}; best minus worst "
                             f"{max(scores.values()) - min(scores.values()):.3f} nats per step")
            elif group == "committed":
                lines.append(f"- {title} ({which}): {len(runs)} of {len(variants)} variants committed, no ranking yet")
    committed = load_runs(COMMITTED, profile="paper")
    lines += [f"- {title}, seed-to-seed standard deviation of smooth+Resq ({name}, {s['device']}, {len(s['elbo'])} "
              f"seeds): {s['std']:.3f} nats per step" for dataset, title in datasets.items()
              for proto, name in (("original", "original protocol"), ("first", "first protocol"))
              for s in seed_spread(committed, dataset, proto=proto)]
    return lines
