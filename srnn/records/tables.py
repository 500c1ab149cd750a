"""The comparisons that the book and ``python -m srnn.results`` show, computed from records.

A run is classified by what its record says, never by its name alone:

- its *protocol*: ``"original"`` (the original code's protocol, the package's defaults) or
  ``"first"`` (this project's first protocol, before the defaults followed the original code:
  those runs' ids end in ``-legacy`` and their records say so);
- whether it has the *paper's settings*: its config is the preset of its domain (``music``,
  ``timit``, ``blizzard``) with its variant's inference network, under its protocol,
  whatever its seed and device;
- its kind of device (``cpu`` or ``cuda``): one seed follows different paths on the two.

A music set's *main run* has the paper's settings and seed. Its *chosen run* is the run of
that set, protocol and variant whose best validation bound is highest among those with the
paper's seed, whatever else they change; reruns of the chosen config with other seeds show
how much of its test bound is the seed.
"""
from __future__ import annotations

import math
import statistics

from ..config import BASELINE_PRESETS, Config, preset
from ..datasets.speech_corpora import full_corpus
from . import grid
from .paper import MUSIC_NAMES, PAPER_MUSIC, PAPER_SPEECH, PAPER_SPEECH_BASELINES
from .replay import drift_mark, drift_notes
from .store import run_name

# The paper's settings: SRNN's presets of Tables 1 and 2, and the baselines sized to match them.
PAPER_PRESETS = ("music", "timit", "blizzard",
                 *(name for name in BASELINE_PRESETS if not name.endswith("speech_small")))


def protocol(record: dict) -> str:
    """'first' for a run of this project's first protocol (its record says so), else 'original'."""
    return "first" if str(record.get("protocol", "")).startswith("first") else "original"


def first_protocol(name: str, **fields) -> Config:
    """The preset ``name`` as the first protocol ran it: one full-rate epoch fewer, validation
    carrying the state, stacked Glorot-normal heads, one filtering layer, windowed speech
    test, no early stopping."""
    base = preset(name, **fields)
    return base.replace(lr_decay_start=base.lr_decay_start - 1, valid_state="carry", init="stacked",
                        filter_layers=1, patience=0, test_pass="whole" if base.output == "bernoulli" else "windows")


def paper_settings(record: dict) -> bool:
    """Whether the run used the paper's settings under its protocol (whatever seed and device)."""
    return not departures(record)


def departures(record: dict) -> list[str]:
    """The config fields in which a run departs from the paper's settings under its protocol
    (``[]`` for a paper run; the preset's name alone for a preset that is not the paper's)."""
    cfg = Config.from_dict(record["config"])
    if cfg.name not in PAPER_PRESETS:
        return [f"preset {cfg.name!r}"]
    make = preset if protocol(record) == "original" else first_protocol
    paper = make(cfg.name, **({"inference": cfg.inference, "resq": cfg.resq} if cfg.model == "srnn" else
                              {"vrnn_prior": cfg.vrnn_prior} if cfg.model == "vrnn" else {})).to_dict()
    return [f"{k}={v}" for k, v in cfg.to_dict().items() if k not in ("seed", "device") and paper[k] != v]


def device_kind(record: dict) -> str:
    """'cpu' or 'cuda'."""
    return record["hardware"]["device"].split(":")[0]


def _runs_of(runs, dataset, form="npz", variant="smooth+Resq", proto="original") -> list[dict]:
    return [r for r in runs if r.get("domain") == "music" and protocol(r) == proto
            and (r["dataset"], r["data_form"], r["variant"]) == (dataset, form, variant)]


def paper_runs(runs, dataset, form="npz", variant="smooth+Resq", proto="original") -> list[dict]:
    """The runs of one music set, form, variant and protocol with the paper's settings."""
    return [r for r in _runs_of(runs, dataset, form, variant, proto) if paper_settings(r)]


def main_run(runs, dataset, form="npz", variant="smooth+Resq", proto="original") -> dict | None:
    """The run that ``python -m srnn.experiment music --dataset <set> --form <form>`` makes
    (with ``--name legacy`` and the first protocol's settings for ``proto="first"``)."""
    run_id = run_name("music", dataset, form, variant, "legacy" if proto == "first" else "")
    return next((r for r in paper_runs(runs, dataset, form, variant, proto) if r["id"] == run_id), None)


def before(runs, record: dict) -> dict | None:
    """The first protocol's run with the paper's settings, the same data, variant and seed, on
    the same kind of device as ``record``: what the record is measured against."""
    return next((r for r in paper_runs(runs, record["dataset"], record["data_form"], record["variant"], "first")
                 if r["seed"] == record["seed"] and device_kind(r) == device_kind(record)), None)


def music_table(runs: list[dict], variant: str = "smooth+Resq") -> list[dict]:
    """Table 2: per music set (the authors' arrays) the paper's number, our main run and the
    first protocol's run with the same seed and kind of device."""
    rows = []
    for key, title in MUSIC_NAMES.items():
        row = {"dataset": key, "data set": title, "paper": PAPER_MUSIC[key]}
        main = main_run(runs, key, "npz", variant)
        if main is not None:
            t = main["test"]
            row.update(run=main["id"], elbo=t["elbo_per_step_seq"], elbo_frames=t["elbo_per_step"],
                       iwae=t.get("iwae_per_step_seq"), iwae_k=t.get("iwae_samples"),
                       gap=t["elbo_per_step_seq"] - PAPER_MUSIC[key], epochs=main["epochs"],
                       best_epoch=main["best_epoch"], device=device_kind(main),
                       hours=main["train_wall_time_s"] / 3600)
            old = before(runs, main)
            if old is not None:
                row.update(before=old["test"]["elbo_per_step_seq"], before_run=old["id"])
        rows.append(row)
    return rows


def _same_but_seed(a: dict, b: dict) -> bool:
    """Whether two runs share every setting but the seed and device (fields added to the
    config between them count with the value that ran)."""
    free = {"seed": 0, "device": ""}
    return ({**Config.from_dict(a["config"]).to_dict(), **free} ==
            {**Config.from_dict(b["config"]).to_dict(), **free})


def chosen(runs: list[dict], dataset: str, form: str = "npz", variant: str = "smooth+Resq",
           proto: str = "original") -> dict | None:
    """The setting chosen on validation for one music set and model, and its seeds.

    Under the original code's protocol the candidates are the points of the search grid
    (:mod:`srnn.records.grid`) that have run, with the paper's seed: ``missing`` names the
    points still to run, ``earlier`` the other settings tried with that seed before the grid
    was written down (shown, never chosen). Under the first protocol, its history: every
    setting tried with the paper's seed. ``seeds`` holds the chosen config's runs, its own
    first, with their test bounds' mean and sd; ``paper`` is the paper's number (SRNN's
    alone: the paper's Table 2 has no VRNN)."""
    seed = grid.GRID_SEED
    mine = _runs_of(runs, dataset, form, variant, proto)
    if proto == "original" and form == "npz" and variant in grid.MODELS:
        found = grid.search(runs, dataset, variant)
        candidates = [r for r in found["points"].values() if r is not None]
        missing = [s for s, r in found["points"].items() if r is None]
        earlier = [r for r in mine if r["seed"] == seed and grid.grid_point(r) is None]
        seeds = found["seeds"]
    else:
        candidates, missing, earlier = [r for r in mine if r["seed"] == seed], [], []
        seeds = None
    if not candidates:
        return None
    candidates.sort(key=lambda r: -r["valid_best"]["elbo_per_step"])
    best = candidates[0]
    if seeds is None:
        seeds = [best] + sorted((r for r in mine if r is not best and _same_but_seed(r, best)
                                 and device_kind(r) == device_kind(best)), key=lambda r: r["seed"])
    elbo = [r["test"]["elbo_per_step_seq"] for r in seeds]
    return {"candidates": candidates, "chosen": best, "seeds": seeds, "mean": statistics.mean(elbo),
            "std": statistics.stdev(elbo) if len(elbo) > 1 else None, "missing": missing, "earlier": earlier,
            "complete": not missing and len(seeds) == 1 + len(grid.OTHER_SEEDS),
            "paper": PAPER_MUSIC[dataset] if variant == "smooth+Resq" else None}


def equal_tuning(runs: list[dict], dataset: str) -> dict:
    """SRNN against VRNN when each is chosen by the same grid on validation: each model's
    choice (see :func:`chosen`), and once both are complete (the grid and three seeds), the
    difference of their seed means with its standard error from the seeds' spread, and
    a verdict: a model is ahead where the difference is more than twice its standard error."""
    srnn, vrnn = (chosen(runs, dataset, variant=v) for v in ("smooth+Resq", "VRNN"))
    out = {"SRNN": srnn, "VRNN": vrnn, "verdict": None}
    if srnn and vrnn and srnn["complete"] and vrnn["complete"]:
        diff = srnn["mean"] - vrnn["mean"]
        se = math.sqrt(srnn["std"] ** 2 / len(srnn["seeds"]) + vrnn["std"] ** 2 / len(vrnn["seeds"]))
        out.update(difference=diff, se=se,
                   verdict="SRNN" if diff > 2 * se else "VRNN" if diff < -2 * se else "neither")
    return out


def diverged(record: dict) -> bool:
    """Whether a music run's test bound per step lies below that of a fair coin for each of
    the 88 keys (88 ln 2 = 61 nats): a model that bad has diverged, not learned."""
    return record.get("domain") == "music" and record["test"]["elbo_per_step_seq"] < -88 * math.log(2)


def test_elbo(record: dict) -> str:
    """A record's test ELBO per step (mean over pieces) with its standard error over sample
    paths, or marked as one path (records made before the test bound was averaged, and the
    RNN, whose bound is exact)."""
    t = record["test"]
    if "elbo_per_step_seq_se" in t:
        return f"{t['elbo_per_step_seq']:.3f} ± {t['elbo_per_step_seq_se']:.3f}"
    return f"{t['elbo_per_step_seq']:.3f}" + ("" if record.get("variant") == "RNN" else " (one path)")


def setting(record: dict) -> str:
    """What a run changes from the paper's settings of its protocol, e.g. 'batch_size=4'."""
    return ", ".join(departures(record)) or "the paper's settings"


def seed_spread(runs, dataset, form="npz", variant="smooth+Resq", proto="original") -> list[dict]:
    """For each kind of device with two seeds or more of the paper's settings: the test ELBO
    per step (mean over pieces) of each seed, their mean and sd, the best and the worst."""
    spreads = []
    found = paper_runs(runs, dataset, form, variant, proto)
    for kind in sorted({device_kind(r) for r in found}):
        elbo = {r["seed"]: r["test"]["elbo_per_step_seq"]
                for r in sorted(found, key=lambda r: r["seed"]) if device_kind(r) == kind}
        if len(elbo) >= 2:
            spreads.append({"device": kind, "elbo": elbo, "mean": statistics.mean(elbo.values()),
                            "std": statistics.stdev(elbo.values()), "best": max(elbo.values()),
                            "worst": min(elbo.values())})
    return spreads


def baseline(runs: list[dict], record: dict) -> dict | None:
    """What a change of settings is measured against: the run with the paper's settings of
    the same data set, form, variant, protocol and seed, on the same kind of device."""
    return next((r for r in paper_runs(runs, record["dataset"], record["data_form"], record["variant"],
                                       protocol(record))
                 if r["seed"] == record["seed"] and device_kind(r) == device_kind(record)
                 and r["id"] != record["id"]), None)


def speech_table(runs: list[dict]) -> list[dict]:
    """Table 1: per model the paper's bound for Blizzard and TIMIT (None where the paper has
    none) next to our run with the paper's settings and the original protocol on the whole
    corpus (None where there is none): the four SRNN variants, then the baselines the paper
    quotes, each with the variant of ours that is the same model. A run counts by what its
    record says (its config and its data's fingerprint), never by its id alone: a part of
    TIMIT, another corpus or smaller sizes stay out of the table."""
    models = [(f"SRNN ({variant})", variant, paper) for variant, paper in PAPER_SPEECH.items()]
    models += [(name, ours, paper) for name, (ours, paper) in PAPER_SPEECH_BASELINES.items()]
    rows = []
    for model, variant, paper in models:
        row = {"model": model}
        for corpus in ("blizzard", "timit"):
            found = [r for r in runs if r.get("domain") == "speech"
                     and r["id"] == run_name("speech", corpus, variant=variant) and protocol(r) == "original"
                     and paper_settings(r) and r["data"].get("corpus") == corpus and full_corpus(r["data"])]
            row[f"{corpus} paper"] = paper.get(corpus)
            row[f"{corpus} ours"] = found[-1]["test"]["elbo_per_seq"] if found else None
        rows.append(row)
    return rows


def _fmt(value, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def print_tables(runs: list[dict]) -> None:
    """The tables of ``python -m srnn.results``."""
    print("Table 2 (music, authors' arrays, smooth+Resq; test ELBO per step, mean over pieces as the "
          "authors' code; the original code's protocol):")
    print(f"{'data set':15s} {'paper':>7s} {'ours':>8s} {'gap':>7s} {'IWAE':>8s} {'epochs':>7s} {'before':>8s}  run")
    for r in music_table(runs):
        print(f"{r['data set']:15s} {r['paper']:7.2f} {_fmt(r.get('elbo')):>8s} {_fmt(r.get('gap'), '+.3f'):>7s} "
              f"{_fmt(r.get('iwae')):>8s} {r.get('epochs', '-'):>7} {_fmt(r.get('before')):>8s}  "
              f"{r.get('run', 'no run yet')}")
    print("('before': the first protocol's run with the same seed on the same kind of device)")
    marked = []                                          # seeds today's code does not reproduce
    for variant in grid.MODELS:
        model = "SRNN" if variant == "smooth+Resq" else variant
        print(f"\n{model}, chosen on validation among the search grid's points (seed 123), and its seeds:")
        for key, title in MUSIC_NAMES.items():
            c = chosen(runs, key, variant=variant)
            if c is None:
                print(f"{title:15s} no run yet")
                continue
            sd = "" if c["std"] is None else f" +- {c['std']:.3f}"
            vs = "" if c["paper"] is None else f" (paper {c['paper']:.2f}, {c['mean'] - c['paper']:+.3f})"
            todo = f"; {len(c['missing'])} grid point(s) to run" if c["missing"] else ""
            seeds = ", ".join(f"{r['seed']}{drift_mark(r)}" for r in c["seeds"])
            marked += [r for r in c["seeds"] if drift_mark(r)]
            print(f"{title:15s} {setting(c['chosen'])}: seeds {seeds}: {c['mean']:.3f}{sd}{vs}{todo}")
    for note in drift_notes(marked):
        print(note.replace("`", ""))
    print("\nSRNN against VRNN with equal tuning (SRNN - VRNN, mean over seeds):")
    for key, title in MUSIC_NAMES.items():
        found = equal_tuning(runs, key)
        said = "not answered yet: both searches must be complete" if found["verdict"] is None else \
            f"{found['difference']:+.3f} +- {found['se']:.3f}: " + \
            ("no clear difference" if found["verdict"] == "neither" else f"{found['verdict']} ahead")
        print(f"{title:15s} {said}")
    print("\nTable 1 (speech, bound per sequence; '-' = no run yet):")
    for r in speech_table(runs):
        print(f"{r['model']:22s} Blizzard paper {_fmt(r['blizzard paper'], 'd'):>6} ours "
              f"{_fmt(r['blizzard ours'], '.0f'):>6}   TIMIT paper {_fmt(r['timit paper'], 'd'):>6} ours "
              f"{_fmt(r['timit ours'], '.0f'):>6}")
