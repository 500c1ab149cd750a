"""The Performance page's tables and sentences, from the records ``benchmarks/update_time.py --record``
writes to ``results/benchmarks/<name>.json``: each holds the update times measured side by
side in one process, the code commit, the hardware with the engine of its products, the
command and the wall time. A ratio below 1 is faster than the package's plain update.
"""
from __future__ import annotations

from pathlib import Path

from ..files import read_json

PATHS = {"reference": "step-by-step reference", "oneDNN": "fp32 products on oneDNN",
         "compiled": "compile=true", "DVAE": "DVAE's SRNN"}
SHORT = {"reference": "reference", "oneDNN": "oneDNN", "compiled": "compiled", "DVAE": "DVAE"}   # table headers
# Commits whose model code is not the package's, and how it differed: a record of one of
# them timed that code, not the package as it is now.
SUPERSEDED = {"213e520": "its model computed phi once, over x, and took phi(u) as phi(x) one step later; that "
                         "change was taken out again (commit 3ed0146) because it changes the products' rounding, "
                         "and the committed runs then no longer reproduce bit for bit"}


def superseded(record: dict) -> str | None:
    """How the model code of the record's commit differs from the package's, if it does."""
    commit = record["code"]["commit"]
    return next((why for prefix, why in SUPERSEDED.items() if commit.startswith(prefix)), None)


def measured_lines(records: list[dict]) -> list[str]:
    """In plain sentences: where, with what and at which commit the records were measured,
    and whether that commit's model code is the package's."""
    lines = []
    for commit in dict.fromkeys(r["code"]["commit"] for r in records):
        found = [r for r in records if r["code"]["commit"] == commit]
        machines = sorted({f"{machine(r)} with {r['hardware'].get('cpu_count', '?')} cores" for r in found})
        threads = sorted({r["hardware"]["torch_threads"] for r in found})
        torch = sorted({r["hardware"]["torch"] for r in found})
        days = sorted({r["started"][:10] for r in found})
        names = ", ".join(f"`{r['name']}`" for r in found)
        line = (f"- {len(found)} record(s) ({names}) were measured at commit "
                f"{commit[:7]} on {' and '.join(days)}, on {'; '.join(machines)}, torch {', '.join(torch)}, "
                f"with {' and '.join(map(str, threads))} thread(s).")
        why = superseded(found[0])
        line += (f" **That commit's model is not the package's:** {why}. The column *package* below is the time "
                 f"of that code, not of the package as it is now." if why else
                 " The model code of that commit is the package's.")
        lines.append(line)
    return lines


def load_benchmarks(root: str | Path = "results") -> list[dict]:
    """Every benchmark record under ``root``/benchmarks, by file name."""
    return [{**read_json(p), "name": p.stem} for p in sorted(Path(root).glob("benchmarks/*.json"))]


def preload(record: dict) -> str | None:
    """The library preloaded into the record's process, if any."""
    return record["hardware"].get("products", {}).get("preload")


def engine(record: dict) -> str:
    """The engine of a record's CPU products: torch's BLAS, and a preloaded library if any."""
    lib = preload(record)
    return record["hardware"].get("products", {}).get("blas", "?") + (f", {Path(lib).name} preloaded" if lib else "")


def machine(record: dict) -> str:
    hw = record["hardware"]
    return f"{hw['device']}" + (f" ({hw['cpu']})" if hw.get("cpu") and hw["device"].startswith("cpu") else "")


def device(record: dict) -> str:
    """'CPU', or the GPU's name."""
    name = record["hardware"]["device"]
    return "CPU" if name.startswith("cpu") else name.split(": ", 1)[-1]


def updates_table(records: list[dict]) -> tuple[list[str], list[tuple]]:
    """One row per record and model shape: the package's update time and each other path's
    time as a ratio to it (measured in the same process, turn about); the device is a column
    only where the records ran on more than one."""
    headers = ["device", "threads", "MKL", "shape", "package", *SHORT.values(), "earlier"]
    one_device = len({device(r) for r in records}) == 1          # then the page's first lines name it
    rows = []
    for r in records:
        for shape, u in r["updates"].items():
            ms = u["ms"]
            ratio = {p: f"{ms[p] / ms['package']:.2f}x" for p in ms}
            earlier = ratio[r["against"]] if r.get("against") else "-"
            rows.append((device(r), r["hardware"]["torch_threads"], "Intel" if preload(r) else "default",
                         shape, f"{ms['package']:.0f} ms", *(ratio.get(p, "-") for p in SHORT), earlier))
    if one_device:
        return headers[1:], [row[1:] for row in rows]
    return headers, rows


def shapes_line(records: list[dict]) -> str:
    """The model shapes the tables name, and the earlier commit they time, in words."""
    shapes = {shape: u for r in records for shape, u in r["updates"].items()}
    against = sorted({r["against"] for r in records if r.get("against")})
    if not shapes:
        return ""
    return ("Shapes: " + "; ".join(f"*{shape}*, batch {u['batch']}, {u['steps']} steps, {u['params'] / 1e6:.1f} M "
                                   f"weights" for shape, u in shapes.items())
            + (f". The earlier commit: {', '.join(against)}." if against else "."))


def preload_pairs(records: list[dict]):
    """(plain record, preloaded record, shape, plain ms, preloaded ms) for every pair of records
    of one machine, thread count and commit, with and without a preloaded library."""
    same = lambda r: (machine(r), r["hardware"]["torch_threads"], r["code"]["commit"])
    for pre in filter(preload, records):
        for plain in (r for r in records if not preload(r) and same(r) == same(pre)):
            for shape in sorted(pre["updates"].keys() & plain["updates"].keys()):
                ms = [r["updates"][shape]["ms"]["package"] for r in (plain, pre)]
                yield plain, pre, shape, *ms


def preload_table(records: list[dict]) -> tuple[list[str], list[tuple]]:
    """The package's update with a preloaded library against the same machine, threads and
    commit without one: two processes, one after the other (a preload acts from the start)."""
    headers = ["machine", "threads", "shape", "plain", "preloaded", "ratio", "records"]
    return headers, [(machine(pre), pre["hardware"]["torch_threads"], shape, f"{a:.0f} ms", f"{b:.0f} ms",
                      f"{b / a:.2f}x", f"`{plain['name']}`, `{pre['name']}`")
                     for plain, pre, shape, a, b in preload_pairs(records)]


def product_table(records: list[dict]) -> tuple[list[str], list[tuple]]:
    """One fp32 product of a music update's largest shape, by each engine: GFLOP/s and the
    largest error against float64 (fp32 rounding is about 1e-7; bf16 would be about 1e-3)."""
    headers = ["machine", "threads", "products", "product", "engine", "GFLOP/s", "largest relative error", "record"]
    rows = []
    for r in (r for r in records if r.get("product")):
        p = r["product"]
        for name, gflops in p["gflops"].items():
            rows.append((machine(r), r["hardware"]["torch_threads"], engine(r),
                         "{}x{} by {}x{}".format(p["shape"][0], p["shape"][1], p["shape"][1], p["shape"][2]),
                         "torch's BLAS" if name == "BLAS" else name, f"{gflops:.0f}",
                         f"{p['max_relative_error'][name]:.1e}", f"`{r['name']}`"))
    return headers, rows


def goal_lines(records: list[dict]) -> list[str]:
    """The goal for the CPU (at least the speed of the DVAE project's SRNN, timed in the same
    process with ``--dvae``), per record and shape, in plain sentences: both update times,
    each one's floating-point operations, and the package's fastest path at fp32 accuracy
    (plain, compile=true, or oneDNN where its product's error stays at fp32 rounding)."""
    lines = []
    for r in records:
        onednn_error = (r.get("product") or {}).get("max_relative_error", {}).get("oneDNN", 1)
        fp32 = ["compiled"] + ["oneDNN"] * (onednn_error < 1e-5)      # bf16 products are not fp32
        for shape, u in r["updates"].items():
            ms = u["ms"]
            if "DVAE" not in ms:
                continue
            best, how = min([(ms["package"], "its plain update")] + [(ms[p], PATHS[p]) for p in fp32 if p in ms])
            work = u.get("gflop", {})
            flops = (f" (DVAE's does {work['DVAE']:.1f} GFLOP an update, the package's {work['package']:.1f})"
                     if work else "")
            verdict = ("so the goal is met" if best <= ms["DVAE"] else
                       f"so the goal is not met: the package needs {best / ms['DVAE'] - 1:.0%} more time than DVAE")
            lines.append(f"- {shape} shape, {r['hardware']['torch_threads']} thread(s), {engine(r)} (`{r['name']}`): "
                         f"an update of DVAE's SRNN took {ms['DVAE']:.0f} ms, the package's {ms['package']:.0f} ms"
                         f"{flops}. The package's fastest path at fp32 accuracy was {how}, {best:.0f} ms, {verdict}.")
    return lines


def provenance_lines(records: list[dict]) -> list[str]:
    """Where and when each record was measured, and with which command."""
    return [f"- `{r['name']}`: {machine(r)}, {r['hardware']['torch_threads']} thread(s), torch "
            f"{r['hardware']['torch']}, commit {r['code']['commit'][:10]}{' (dirty)' * bool(r['code'].get('dirty'))}, "
            f"{r['started']}, {r['wall_time_s'] / 60:.1f} min: `{r['command']}`" for r in records]
