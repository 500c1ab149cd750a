"""The book's tables and lines from records, as (headers, rows) for :func:`srnn.book.plots.markdown_table`:
the Results and first-protocol pages and each training page's test bound.

Every number comes from a record through :mod:`srnn.records.tables`; a row without a record says
"no run yet" instead of showing a number. The Baselines page's tables, which set models side
by side, are in :mod:`srnn.records.model_comparison`.
"""
from __future__ import annotations

from . import grid, tables
from .paper import MUSIC_NAMES, PAPER_MUSIC, PAPER_SPEECH
from .replay import drift_mark, drift_notes
from .store import run_name

NO_RUN = "no run yet"


def pipe_table(headers, rows) -> list[str]:
    """The lines of a markdown pipe table."""
    if any(len(r) != len(headers) for r in rows):
        raise ValueError(f"every row needs {len(headers)} cells")
    return (["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
            + ["| " + " | ".join(map(str, r)) + " |" for r in rows])


SEARCH = ("The search protocol (`srnn/records/grid.py`): one grid for every set and for SRNN and VRNN alike "
          "(the paper's settings; batch 8; dropout 0.25 on the deterministic state and on z; both), each point "
          "trained with seed 123 and the one with the best validation bound chosen, then trained with seeds 124 "
          "and 125. No test number decides a choice. Its history: settings were first tried only where SRNN fell "
          "short of the paper (JSB, Nottingham, Piano-midi.de); the grid was written down afterwards and is being "
          "completed on every set and model, and until it is, a choice may still change.")


def where_we_stand(runs: list[dict]) -> str:
    """Markdown for results/README.md: Table 2, the search protocol, each model's choice with
    its seeds, SRNN against VRNN with equal tuning, and where SRNN still falls short
    (``python -m srnn.results --markdown``)."""
    headers, rows = table_2(runs)
    _, _, srnn = chosen_table(runs)
    _, _, vrnn = chosen_table(runs, variant="VRNN")
    short = shortfalls(runs)
    verdict = ["SRNN below the paper:", "", *short] if short else ["SRNN at or above the paper on every set."]
    return "\n".join(["Table 2, main runs (the paper's settings and seed, the original code's protocol):", "",
                      *pipe_table(headers, rows), "", SEARCH, "", "SRNN, chosen on validation, with its seeds:", "",
                      *srnn, "", "VRNN, chosen the same way:", "", *vrnn, "",
                      "SRNN against VRNN, each chosen by the same grid (test ELBO per step, mean over seeds):", "",
                      *equal_tuning_lines(runs), "", *verdict])


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


def chosen_table(runs: list[dict], proto: str = "original",
                 variant: str = "smooth+Resq") -> tuple[list[str], list[tuple], list[str]]:
    """Every setting per music set with the paper's seed: under the original protocol the
    search grid's points (the one chosen on validation marked, those not run yet named)
    and the settings tried before the grid; and one line per set on the chosen setting's
    seeds (against the paper's number for SRNN)."""
    rows, lines, shown = [], [], []
    for key, title in MUSIC_NAMES.items():
        c = tables.chosen(runs, key, variant=variant, proto=proto)
        if c is None:
            lines.append(f"- {title}: no run yet")
            continue
        paper = c["paper"]
        for r, note in [(r, " **(chosen)**" if r is c["chosen"] else "") for r in c["candidates"]] + \
                       [(r, " (tried before the grid; not a candidate)") for r in c["earlier"]]:
            gap = "-" if paper is None else f"{r['test']['elbo_per_step_seq'] - paper:+.3f}"
            if tables.diverged(r):                      # its numbers mean nothing: said, not ranked
                note += " (diverged: its bound is below a fair coin's for every key)"
            rows.append((title, tables.setting(r) + note, f"{r['valid_best']['elbo_per_step']:.3f}",
                         r["best_epoch"], tables.test_elbo(r) + drift_mark(r), gap, f"`{r['id']}`"))
            shown.append(r)
        rows += [(title, grid.describe(s) + " (grid point, not run yet)", "-", "-", "-", "-", "-")
                 for s in c["missing"]]
        seeds = ", ".join(f"{r['seed']}: {r['test']['elbo_per_step_seq']:.3f}{drift_mark(r)}" for r in c["seeds"])
        shown += c["seeds"]
        spread = "" if c["std"] is None else f" ± {c['std']:.3f}"
        line = (f"- {title}: {tables.setting(c['chosen'])}; test ELBO per step by seed {seeds}; mean "
                f"{c['mean']:.3f}{spread} over {len(c['seeds'])} seed(s)")
        if paper is not None:
            side = "at or above" if c["mean"] >= paper else "below"
            line += f", {abs(c['mean'] - paper):.3f} {side} the paper's {paper:.2f}"
        if c["missing"]:
            n = len(c["missing"])
            verb = "has" if n == 1 else "have"
            line += f" (so far: {n} of the grid's {len(grid.SETTINGS)} points {verb} not run yet)"
        lines.append(line)
    lines += drift_notes(list({r["id"]: r for r in shown}.values()))
    headers = ["data set", "setting", "best validation ELBO / step", "at epoch", "test ELBO / step",
               "test - paper", "run"]
    return headers, rows, lines


def shortfalls(runs: list[dict]) -> list[str]:
    """One line per music set whose chosen SRNN setting, averaged over its seeds, stays below
    the paper: by how much, and what was tried."""
    lines = []
    for key, title in MUSIC_NAMES.items():
        c = tables.chosen(runs, key)
        if c is not None and c["mean"] < c["paper"]:
            tried = "; ".join(tables.setting(r) for r in c["candidates"] + c["earlier"])
            lines.append(f"- {title}: {c['paper'] - c['mean']:.3f} below the paper over {len(c['seeds'])} "
                         f"seed(s). Tried: {tried}.")
        elif c is None:
            lines.append(f"- {title}: no run with the original code's protocol yet.")
    return lines


def equal_tuning_lines(runs: list[dict]) -> list[str]:
    """Per music set: does SRNN beat VRNN when both are chosen by the same grid on validation?
    Each model's choice and seed mean, and the verdict once both searches are complete."""
    lines = []
    for key, title in MUSIC_NAMES.items():
        found = tables.equal_tuning(runs, key)
        parts = []
        for model in ("SRNN", "VRNN"):
            c = found[model]
            if c is None:
                parts.append(f"{model} no run yet")
                continue
            spread = "" if c["std"] is None else f" ± {c['std']:.3f}"
            todo = [f"{len(c['missing'])} grid point(s)"] * bool(c["missing"]) + \
                   [f"{1 + len(grid.OTHER_SEEDS) - len(c['seeds'])} seed(s)"] * (len(c["seeds"]) < 3)
            parts.append(f"{model} {tables.setting(c['chosen'])}, {c['mean']:.3f}{spread} over "
                         f"{len(c['seeds'])} seed(s)" + (f" (to run: {' and '.join(todo)})" if todo else ""))
        if found["verdict"] is None:
            verdict = "not answered yet: both searches must be complete"
        elif found["verdict"] == "neither":
            verdict = (f"no clear difference (SRNN - VRNN = {found['difference']:+.3f} ± {found['se']:.3f}, "
                       f"within twice its standard error)")
        else:
            verdict = (f"{found['verdict']} is ahead (SRNN - VRNN = {found['difference']:+.3f} ± "
                       f"{found['se']:.3f} over the seeds)")
        lines.append(f"- {title}: {'; '.join(parts)}. {verdict[0].upper() + verdict[1:]}.")
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
        low, high = f"{min(shares):.0%}", f"{max(shares):.0%}"
        share = f"about {low}" if low == high else f"{low} to {high}"
        lines.append(f"- {label} (Adam epsilon {r['config']['adam_eps']:g}, {r['config']['adam_eps_style']} "
                     f"style): {share} of the weights below epsilon; mean gradient "
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
