"""The Results page's tables, as (headers, rows) for :func:`srnn.plots.markdown_table`.

Every number comes from a record through :mod:`srnn.tables`; a row without a record says
"no run yet" instead of showing a number.
"""
from __future__ import annotations

from . import tables
from .results import MUSIC_NAMES, PAPER_MUSIC, run_name

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
    return "\n".join(["Table 2, main runs (the paper's settings and seed, the original code's protocol):", "",
                      *pipe_table(headers, rows), "", "Chosen on validation, with its seeds:", "", *lines, "",
                      "Below the paper:" if short else "At or above the paper on every set.", *([""] + short
                                                                                               if short else [])])


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
    """Table 1: the paper's speech bounds and ours, per SRNN variant."""
    rows = []
    for r in tables.speech_table(runs):
        cells = [r["model"]]
        for corpus in ("blizzard", "timit"):
            ours, paper = r[f"{corpus} ours"], r[f"{corpus} paper"]
            cells += [f"{paper:,}", _num(ours, 0), "-" if ours is None else f"{ours - paper:+,.0f}"]
        rows.append(tuple(cells))
    return ["model", "Blizzard: paper", "ours", "gap", "TIMIT: paper", "ours", "gap"], rows


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
    run_id = run_name(dataset, "npz", "smooth+Resq", "-".join(filter(None, [suffix, "legacy"])))
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
