"""The models side by side, from their records: SRNN's variants and the VRNN and RNN baselines
on one data set (the Baselines page), each claim of the paper about two of them tested on
our runs, and the music baselines beside Table 2 (the Results page). Every number comes
from a record; a model without one says "no run yet" or is left out, never guessed.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import tables
from .paper import MUSIC_NAMES, PAPER_MUSIC
from .report import NO_RUN

# The models of the Baselines page, by the variant name their records carry.
MODEL_TITLES = {"smooth+Resq": "SRNN, smoothing + Resq", "smooth": "SRNN, smoothing",
                "filt+Resq": "SRNN, filtering + Resq", "filt": "SRNN, filtering", "VRNN": "VRNN",
                "VRNN-I": "VRNN-I (standard normal prior)", "RNN": "RNN",
                "VRNN-GMM": "VRNN-GMM (mixture output)", "RNN-GMM": "RNN-GMM (mixture output)"}


def model_table(records: dict[str, dict]) -> tuple[list[str], list[tuple]]:
    """One row per model (``records``: variant -> record) with its test bounds: per sequence
    (the unit of Table 1), per step, and the KL per step."""
    rows = []
    for variant, r in records.items():
        t = r["test"]
        iwae = f"{t['iwae_per_seq']:,.1f} (K={t['iwae_samples']})" if "iwae_per_seq" in t else "-"
        rows.append((MODEL_TITLES.get(variant, variant), f"{t['elbo_per_seq']:,.1f}", iwae, f"{t['elbo_per_step']:.3f}",
                     f"{t['kl_per_step']:.3f}", f"{r['epochs']} ({r['best_epoch']})", f"`{r['id']}`"))
    return ["model", "test ELBO / sequence", "IWAE / sequence", "ELBO / step", "KL / step", "epochs (best)",
            "run"], rows


def claims(records: dict[str, dict], key: str = "elbo_per_seq", unit: str = "nats per sequence",
           digits: int = 1, among: Sequence[str] | None = None) -> list[str]:
    """The paper's claims, each tested on ``records`` (variant -> record, one data set): one
    line per claim with the two test bounds (``key``) and which is higher, or what is missing.
    ``among``: only the claims about these models."""
    tests = [("the smoothing posterior beats filtering (with Resq)", "smooth+Resq", "filt+Resq"),
             ("the smoothing posterior beats filtering (without Resq)", "smooth", "filt"),
             ("Resq helps the smoothing posterior", "smooth+Resq", "smooth"),
             ("Resq helps the filtering posterior", "filt+Resq", "filt"),
             ("separating the deterministic and stochastic paths (SRNN) beats feeding z back (VRNN)",
              "smooth+Resq", "VRNN"),
             ("a learned prior beats a standard normal one in VRNN", "VRNN", "VRNN-I"),
             ("a latent state beats none: VRNN against the RNN", "VRNN", "RNN"),
             ("a latent state beats none: SRNN against the RNN", "smooth+Resq", "RNN"),
             ("(Chung et al.) a mixture output helps the RNN", "RNN-GMM", "RNN"),
             ("(Chung et al.) a mixture output helps VRNN", "VRNN-GMM", "VRNN")]
    lines = []
    for claim, a, b in tests:
        if among is not None and not {a, b} <= set(among):
            continue
        first, second = (records[v]["test"][key] if v in records else None for v in (a, b))
        if first is None or second is None:
            lines.append(f"- {claim}: not tested yet (no run of {a if first is None else b})")
            continue
        verdict = "holds" if first > second else "does not hold"
        lines.append(f"- {claim}: **{verdict}** here, {first:,.{digits}f} ({MODEL_TITLES[a]}) against "
                     f"{second:,.{digits}f} ({MODEL_TITLES[b]}), a difference of {first - second:+,.{digits}f} {unit}")
    return lines


def permutation_table(plain: dict[str, dict], permuted: dict[str, dict]) -> tuple[list[str], list[tuple]]:
    """Each model's test bound on the data and on the same data with the samples permuted
    within every frame, and its rank among the models in each (Dai et al. 2019)."""
    both = [v for v in plain if v in permuted]
    plain, permuted = ({v: r[v]["test"]["elbo_per_seq"] for v in both} for r in (plain, permuted))

    def ranks(bounds):
        order = sorted(both, key=lambda v: -bounds[v])
        return {v: order.index(v) + 1 for v in both}

    rank, rank_perm = ranks(plain), ranks(permuted)
    rows = [(MODEL_TITLES[v], f"{plain[v]:,.1f}", rank[v], f"{permuted[v]:,.1f}", rank_perm[v],
             f"{permuted[v] - plain[v]:+,.1f}") for v in both]
    return ["model", "test ELBO / sequence", "rank", "permuted within frames", "rank", "change"], rows


MUSIC_MODELS = ("smooth+Resq", "VRNN", "VRNN-I", "RNN")


def baselines_music(runs: list[dict]) -> tuple[list[str], list[tuple]]:
    """Table 2's sets: SRNN's main run beside the baselines' main runs (the same protocol)."""
    rows = []
    for key, title in MUSIC_NAMES.items():
        cells = [title, f"{PAPER_MUSIC[key]:.2f}"]
        for variant in MUSIC_MODELS:
            main = tables.main_run(runs, key, "npz", variant)
            cells.append(NO_RUN if main is None else f"{main['test']['elbo_per_step_seq']:.3f}")
        rows.append(tuple(cells))
    return ["data set", "paper (SRNN)", *(f"ours: {MODEL_TITLES[v]}" for v in MUSIC_MODELS)], rows


def music_model_runs(runs: list[dict]) -> dict[str, dict[str, dict]]:
    """Per music set with at least one baseline run: model -> its main run (the same protocol)."""
    found = {}
    for key, title in MUSIC_NAMES.items():
        models = {v: tables.main_run(runs, key, "npz", v) for v in MUSIC_MODELS}
        found[title] = {v: r for v, r in models.items() if r}
    return {title: models for title, models in found.items() if len(models) > 1}


def music_model_table(records: dict[str, dict]) -> tuple[list[str], list[tuple]]:
    """One row per model of a music set (``records``: variant -> its main run): the test
    bounds per step (mean over pieces, Table 2's unit) and the KL per step."""
    rows = []
    for variant, r in records.items():
        t = r["test"]
        iwae = f"{t['iwae_per_step_seq']:.3f} (K={t['iwae_samples']})" if "iwae_per_step_seq" in t else "-"
        rows.append((MODEL_TITLES[variant], f"{t['elbo_per_step_seq']:.3f}", iwae, f"{t['kl_per_step']:.3f}",
                     f"{r['epochs']} ({r['best_epoch']})", f"`{r['id']}`"))
    return ["model", "test ELBO / step", "IWAE / step", "KL / step", "epochs (best)", "run"], rows


def first_rolls(records: dict[str, dict]) -> dict[str, np.ndarray]:
    """The first sampled piano roll (steps, 88) of each model whose run wrote samples, by name."""
    return {MODEL_TITLES[v]: np.load(Path(r["path"]) / "samples" / "rolls.npz")["rolls"][0]
            for v, r in records.items() if "samples/rolls.npz" in r.get("samples", [])}


def first_roll_rows(music: dict[str, dict[str, dict]]) -> list[tuple[list[np.ndarray], list[str]]]:
    """Per music set (``music``: title -> its models' runs), the first rolls of its models and
    their panel titles: the rows of :func:`srnn.book.plots.piano_roll_rows`."""
    return [(list(rolls.values()), [f"{title}: {model}" for model in rolls])
            for title, records in music.items() if (rolls := first_rolls(records))]


def first_samples(records: dict[str, dict]) -> list[tuple[str, str]]:
    """(model and run, path of its first sampled sound) of each model whose run wrote one."""
    return [(f"{MODEL_TITLES[v]} (`{r['id']}`)", f"{r['path']}/samples/sample1.wav")
            for v, r in records.items() if "samples/sample1.wav" in r.get("samples", [])]


def music_claims(records: dict[str, dict]) -> list[str]:
    """The claims about the models of :data:`MUSIC_MODELS`, by the test ELBO per step."""
    return claims(records, "elbo_per_step_seq", "nats per step", digits=3, among=MUSIC_MODELS)


def labelled(records: dict[str, dict]) -> dict[str, dict]:
    """``records`` (variant -> record) by the models' names, for a legend."""
    return {MODEL_TITLES[v]: r for v, r in records.items()}
