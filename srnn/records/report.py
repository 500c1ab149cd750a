"""The book's tables and lines from records, as (headers, rows) for :func:`srnn.book.plots.markdown_table`:
the Results and first-protocol pages, the Baselines page, and each training page's test bound.

Every number comes from a record through :mod:`srnn.records.tables`; a row without a record says
"no run yet" instead of showing a number.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import tables
from .paper import MUSIC_NAMES, PAPER_MUSIC, PAPER_SPEECH
from .store import run_name

NO_RUN = "no run yet"


def pipe_table(headers, rows) -> list[str]:
    """The lines of a markdown pipe table."""
    if any(len(r) != len(headers) for r in rows):
        raise ValueError(f"every row needs {len(headers)} cells")
    return (["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
            + ["| " + " | ".join(map(str, r)) + " |" for r in rows])


def where_we_stand(runs: list[dict]) -> str:
    """Markdown for results/README.md: Table 2, the chosen setting of each set with its
    seeds, and where we still fall short (``python -m srnn.results --markdown``)."""
    headers, rows = table_2(runs)
    _, _, lines = chosen_table(runs)
    short = shortfalls(runs)
    verdict = ["Below the paper:", "", *short] if short else ["At or above the paper on every set."]
    return "\n".join(["Table 2, main runs (the paper's settings and seed, the original code's protocol):", "",
                      *pipe_table(headers, rows), "", "Chosen on validation, with its seeds:", "", *lines, "",
                      *verdict])


def _num(value, digits: int = 3, sign: str = "") -> str:
    return NO_RUN if value is None else f"{value:{sign}.{digits}f}"


def table_2(runs: list[dict]) -> tuple[list[str], list[tuple]]:
    """Table 2 with our main runs (original protocol) and the first protocol's beside them."""
    rows = []
    for r in tables.music_table(runs):
        has = "run" in r
        iwae = f"{r['iwae']:.3f} (K={r['iwae_k']})" if has and r.get("iwae") is not None else "-"
        rows.append((r["data set"], f"{r['paper']:.2f}", _num(r.get("elbo")), _num(r.get("elbo_frames")),
                     iwae if has else NO_RUN, _num(r.get("gap"), sign="+"),
                     f"{r['epochs']} ({r['best_epoch']})" if has else "-",
                     f"{r['before']:.3f}" if "before" in r else "-", f"`{r['run']}`" if has else "-"))
    headers = ["data set", "paper", "ours: ELBO / step", "ours: all frames", "ours: IWAE", "gap",
               "epochs (best)", "first protocol", "run"]
    return headers, rows


def chosen_table(runs: list[dict], proto: str = "original") -> tuple[list[str], list[tuple], list[str]]:
    """Every setting tried per music set (the paper's seed), the one chosen on validation
    marked; and one line per set on the chosen setting's seeds against the paper."""
    rows, lines = [], []
    for key, title in MUSIC_NAMES.items():
        c = tables.chosen(runs, key, proto=proto)
        if c is None:
            lines.append(f"- {title}: no run yet")
            continue
        for r in c["candidates"]:
            mark = " **(chosen)**" if r is c["chosen"] else ""
            rows.append((title, tables.setting(r) + mark, f"{r['valid_best']['elbo_per_step']:.3f}",
                         r["best_epoch"], f"{r['test']['elbo_per_step_seq']:.3f}",
                         f"{r['test']['elbo_per_step_seq'] - c['paper']:+.3f}", f"`{r['id']}`"))
        seeds = ", ".join(f"{r['seed']}: {r['test']['elbo_per_step_seq']:.3f}" for r in c["seeds"])
        spread = "" if c["std"] is None else f" ± {c['std']:.3f}"
        verdict = "at or above" if c["mean"] >= c["paper"] else "below"
        lines.append(f"- {title}: {tables.setting(c['chosen'])}; test ELBO per step by seed {seeds}; mean "
                     f"{c['mean']:.3f}{spread} over {len(c['seeds'])} seed(s), {abs(c['mean'] - c['paper']):.3f} "
                     f"{verdict} the paper's {c['paper']:.2f}")
    headers = ["data set", "setting", "best validation ELBO / step", "at epoch", "test ELBO / step",
               "test - paper", "run"]
    return headers, rows, lines


def shortfalls(runs: list[dict]) -> list[str]:
    """One line per music set whose chosen setting, averaged over its seeds, stays below the
    paper: by how much, and what was tried."""
    lines = []
    for key, title in MUSIC_NAMES.items():
        c = tables.chosen(runs, key)
        if c is not None and c["mean"] < c["paper"]:
            tried = "; ".join(tables.setting(r) for r in c["candidates"])
            lines.append(f"- {title}: {c['paper'] - c['mean']:.3f} below the paper over {len(c['seeds'])} "
                         f"seed(s). Tried: {tried}.")
        elif c is None:
            lines.append(f"- {title}: no run with the original code's protocol yet.")
    return lines


def table_1(runs: list[dict]) -> tuple[list[str], list[tuple]]:
    """Table 1: the paper's speech bounds and ours, per model ("-": no number in the paper)."""
    rows = []
    for r in tables.speech_table(runs):
        cells = [r["model"]]
        for corpus in ("blizzard", "timit"):
            ours, paper = r[f"{corpus} ours"], r[f"{corpus} paper"]
            cells += ["-" if paper is None else f"{paper:,}",
                      NO_RUN if ours is None else f"{ours:,.0f}",
                      "-" if ours is None or paper is None else f"{ours - paper:+,.0f}"]
        rows.append(tuple(cells))
    return ["model", "Blizzard: paper", "ours", "gap", "TIMIT: paper", "ours", "gap"], rows


def bounds_table(records: list[dict], domain: str, dataset: str, form: str = "npz") -> tuple[list[str], list[tuple]]:
    """A training page's test bounds, one row per record, next to the paper's number for the
    set (Table 2 for the authors' music arrays, Table 1's smooth+Resq for speech). Music: the
    bound per step as a mean over pieces and over all frames, and the IWAE bound; speech: the
    bound per sequence in one pass and over 40-frame windows, per sample and in bits per raw
    sample, and the IWAE bound."""
    music = domain == "music"
    paper = (PAPER_MUSIC.get(dataset) if form == "npz" else None) if music else PAPER_SPEECH["smooth+Resq"].get(dataset)
    rows = []
    for record in records:
        t = record["test"]
        label = record["profile"] + (" (first protocol)" if tables.protocol(record) == "first" else "")
        if music:
            ours = t["elbo_per_step_seq"]
            rows.append((label, f"{ours:.3f}", f"{t['elbo_per_step']:.3f}",
                         f"{t['iwae_per_step_seq']:.3f} (K={t['iwae_samples']})" if "iwae_per_step_seq" in t else "-",
                         "-" if paper is None else f"{paper:.2f}", "-" if paper is None else f"{ours - paper:+.3f}"))
        else:
            ours, windows = t["elbo_per_seq"], t.get("windows", {}).get("elbo_per_seq")
            rows.append((label, f"{ours:.0f}", "-" if windows is None else f"{windows:.0f}",
                         f"{t['elbo_nats_per_sample']:.4f}", f"{t['elbo_bits_per_sample_raw']:.3f}",
                         f"{t['iwae_per_seq']:.0f} (K={t['iwae_samples']})" if "iwae_per_seq" in t else "-",
                         "-" if paper is None else f"{paper}", "-" if paper is None else f"{ours - paper:+.0f}"))
    if music:
        return ["run", "ELBO / step (mean over pieces)", "ELBO / step (all frames)", "IWAE / step", "paper (Table 2)",
                "gap"], rows
    return ["run", "ELBO / sequence", "ELBO / sequence, windows", "ELBO nats / sample", "bits / raw sample",
            "IWAE / sequence", "paper (Table 1)", "gap"], rows


def reported_bound(record: dict) -> float:
    """The test bound a training page records: per step (mean over pieces) for music, per
    sequence for speech."""
    return record["test"]["elbo_per_step_seq" if record["domain"] == "music" else "elbo_per_seq"]


def seeds_table(runs: list[dict], proto: str) -> tuple[list[str], list[tuple]]:
    """The seed-to-seed spread of the paper's settings, per music set and kind of device."""
    rows = []
    for key, title in MUSIC_NAMES.items():
        for s in tables.seed_spread(runs, key, proto=proto):
            seeds = ", ".join(f"{seed}: {elbo:.3f}" for seed, elbo in s["elbo"].items())
            rows.append((title, s["device"], seeds, f"{s['mean']:.3f} ± {s['std']:.3f}", f"{s['best']:.3f}",
                         f"{PAPER_MUSIC[key]:.2f}"))
    return ["data set", "device", "test ELBO / step by seed", "mean ± sd", "best seed", "paper"], rows


# The first protocol's runs on JSB Chorales that isolate details of the original code.
ORIGINAL_CODE = [("the paper's settings (main run)", ""), ("the paper's settings on a CPU", "cpu"),
                 ("GRU without hidden bias", "gru-nobias"), ("learning-rate decay from epoch 22", "lr-decay21"),
                 ("Adam epsilon as Lasagne", "adam-lasagne"), ("all three, as the original code", "original-code"),
                 ("Adam epsilon 1e-8", "adam-eps1e-8"), ("Adam epsilon 1e-8, seed 124", "adam-eps1e-8-seed124")]


def first_protocol_run(runs: list[dict], dataset: str, suffix: str) -> dict | None:
    run_id = run_name("music", dataset, "npz", "smooth+Resq", "-".join(filter(None, [suffix, "legacy"])))
    return next((r for r in runs if r["id"] == run_id), None)


def original_code_table(runs: list[dict]) -> tuple[list[str], list[tuple]]:
    """JSB runs of the first protocol with details of the original Lasagne code, each
    against the paper's settings with the same seed and kind of device, in seed sd."""
    sd = {s["device"]: s["std"] for s in tables.seed_spread(runs, "jsb", proto="first")}
    rows = []
    for label, suffix in ORIGINAL_CODE:
        r = first_protocol_run(runs, "jsb", suffix)
        if r is None:
            rows.append((label, NO_RUN, "-", "-", "-"))
            continue
        change = "-"
        base = tables.baseline(runs, r)
        if not tables.paper_settings(r) and base is not None:
            diff = r["test"]["elbo_per_step_seq"] - base["test"]["elbo_per_step_seq"]
            unit = sd.get(tables.device_kind(r))
            change = f"{diff:+.3f}" + (f" ({diff / unit:+.1f} sd)" if unit else "") + f" vs `{base['id']}`"
        rows.append((label, f"{r['test']['elbo_per_step_seq']:.3f}", change, r["hardware"]["device"], f"`{r['id']}`"))
    return ["setting", "test ELBO / step", "change from the paper's settings, same seed and device (in seed sd)",
            "ran on", "run"], rows


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


def missing_numbers(runs: list[dict]) -> int:
    """How many of our numbers in Tables 2 and 1 have no record yet (main runs, speech cells)."""
    music = sum(r.get("elbo") is None for r in tables.music_table(runs))
    return music + sum(row.count(NO_RUN) for row in table_1(runs)[1])


# The JSB runs whose optimizer diagnostics show Adam's epsilon regime, by the Results page's label
# (None: the main run of the original protocol; else the suffix of a first-protocol run).
EPSILON_RUNS = [("original protocol, paper settings", None), ("first protocol, seed 126", "seed126"),
                ("first protocol, epsilon 1e-8, seed 124", "adam-eps1e-8-seed124"),
                ("first protocol, Lasagne's epsilon", "original-code")]


def epsilon_regime(runs: list[dict]) -> dict[str, dict]:
    """The runs of :data:`EPSILON_RUNS` that are committed and recorded the diagnostics, by label."""
    found = {label: tables.main_run(runs, "jsb") if suffix is None else first_protocol_run(runs, "jsb", suffix)
             for label, suffix in EPSILON_RUNS}
    return {label: r for label, r in found.items() if r and any("adam_eps_share" in h for h in r["history"])}


def epsilon_lines(diagnosed: dict[str, dict]) -> list[str]:
    """Per run: the range over epochs of the share of weights below epsilon and of the mean
    gradient norm before clipping."""
    lines = []
    for label, r in diagnosed.items():
        history = [h for h in r["history"] if "adam_eps_share" in h]
        shares, norms = [h["adam_eps_share"] for h in history], [h["grad_norm"] for h in history]
        lines.append(f"- {label} (Adam epsilon {r['config']['adam_eps']:g}, {r['config']['adam_eps_style']} "
                     f"style): {min(shares):.0%} to {max(shares):.0%} of the weights below epsilon; mean gradient "
                     f"norm {min(norms):.2f} to {max(norms):.1f}")
    return lines


def run_provenance_lines(runs: list[dict]) -> list[str]:
    """One markdown line per run: epochs, device, hours, code commit (dirty or not), how
    often it was resumed, and the command that made it."""
    lines = []
    for r in runs:
        dirty = " (dirty)" if r["code"].get("dirty") else ""
        resumed = f", resumed {len(r['starts']) - 1} time(s)" if len(r.get("starts", [])) > 1 else ""
        lines.append(f"- `{r['id']}`: {r['epochs']} epochs on {r['hardware']['device']}, "
                     f"{r['wall_time_s'] / 3600:.2f} h, code `{r['code']['commit'][:10]}`{dirty}{resumed}: "
                     f"`{r['command']}`")
    return lines
