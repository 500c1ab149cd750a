"""Time one training update (forward, backward, Adam step) of the package's SRNN against the
plain step-by-step reference and against the package at an earlier commit, side by side in
one process, at the paper's batch sizes; time the importance-weighted bound; estimate what
the paper profile's music pages take on this device.

    python benchmarks/update_time.py                    # music and timit presets, CPU
    python benchmarks/update_time.py --device cuda --profile
    python benchmarks/update_time.py --against 62aee60 --iwae --estimate jsb nottingham muse piano
    python benchmarks/update_time.py --onednn           # the fp32 products on oneDNN too
    python benchmarks/update_time.py --compile          # the z-chain's step through torch.compile too
    python benchmarks/update_time.py --dvae ../DVAE     # the DVAE project's SRNN too (your clone)
    python benchmarks/update_time.py --onednn --compile --record results/benchmarks/cpu-1thread.json

All paths get the same parameters, data and noise; repetitions alternate between them, each
path taking each position in turn, so that any other load on the machine, and whatever one
path leaves in the caches for the next, falls on all alike.

- ``--against REV`` loads the package as it was at git commit REV (from ``git archive``)
  under another name.
- ``--onednn`` also times the package with torch's fp32 matmul precision at "medium", which
  sends a CPU's products to oneDNN (in bf16 where the CPU has the units for it: the printed
  loss change tells), and one product of a music update's largest shape by each engine.
- ``--compile`` also times the package with ``compile=true`` (its first, compiling update is
  the warm-up).
- ``--dvae PATH`` also times the SRNN of the DVAE project from a clone of it at PATH
  (``benchmarks/dvae_srnn.py``; the goal for the CPU update is at least its speed), and prints the floating-point
  operations of an update of each model.
- ``--iwae`` times the K=100 bound of long pieces with the observed path computed once per
  batch against once per group of samples.
- ``--estimate`` multiplies the measured update time by each data set's updates per epoch
  and its 50 epochs (runs go on while validation improves: a lower bound).
- ``--profile`` prints where the time of one update of the package goes (torch.profiler).
- ``--record PATH`` writes what was measured, with the code commit, the hardware (and the
  engine of its products), the command and the wall time, for the book's Performance page;
  it refuses a tree with uncommitted changes.
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import io
import os
import shlex
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import dvae_srnn
import torch
from torch.utils.flop_counter import FlopCounterMode

from srnn.config import preset
from srnn.datasets.batching import Batch, shifted_input
from srnn.errors import ArgumentParser, command_line
from srnn.files import write_json
from srnn.models.model import SRNN
from srnn.models.objective import training_loss
from srnn.records.provenance import provenance
from srnn.testing.reference import reference_forward
from srnn.training.devices import check_compiler
from srnn.training.evaluate import PerGroup, evaluate

ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENT = ("OMP_NUM_THREADS", "LD_PRELOAD")     # what else a record's command must set to measure the same


def reference(model, x, u, noise):
    """The independent step-by-step SRNN on the model's own parameters (so that Adam steps them)."""
    out = reference_forward(model.cfg.to_dict(), dict(model.named_parameters()), x, u, noise=noise)
    return -(out["ll"] - out["kl"]).sum() / x.shape[0] / x.shape[1]


def package(model, x, u, noise):
    return training_loss(model(x, u, noise=noise), torch.ones(x.shape[:2], device=x.device), beta=1.0)


def update(model, opt, loss_of, x, u, noise):
    loss = loss_of(model, x, u, noise)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def gflop(model, opt, loss_of, x, u, noise) -> float:
    """The floating-point operations of one update, in billions, counted by torch with oneDNN
    off (so that a fused LSTM's products are counted like the others)."""
    with warnings.catch_warnings():                 # oneDNN's flags warn about an Intel GPU's TF32
        warnings.simplefilter("ignore", UserWarning)
        with torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as counter:
            update(model, opt, loss_of, x, u, noise)
    return counter.get_total_flops() / 1e9


def previous_package(rev: str, folder: Path):
    """The ``srnn`` package as it was at commit ``rev``, imported as ``srnn_<rev>``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "srnn"], capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    name = f"srnn_{rev}"
    spec = importlib.util.spec_from_file_location(name, folder / "srnn" / "__init__.py",
                                                  submodule_search_locations=[str(folder / "srnn")])
    sys.modules[name] = module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    inside = "models.model" if (folder / "srnn" / "models" / "model.py").is_file() else "model"   # flat before
    return importlib.import_module(f"{name}.{inside}")


def bench(name: str, device: torch.device, repeats: int, profile: bool, previous=None, rev: str = "",
          onednn: bool = False, compiled: bool = False, dvae=None) -> dict:
    """Print the update times side by side; return them (ms, medians) and the losses' changes."""
    cfg = preset(name)
    torch.manual_seed(0)
    model = SRNN(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-9, eps=cfg.adam_eps)  # tiny lr: same work, stable model
    B, T = cfg.batch_size, cfg.window
    if cfg.output == "bernoulli":
        x = torch.bernoulli(torch.full((B, T, cfg.x_dim), 0.1, device=device))
    else:
        x = torch.randn(B, T, cfg.x_dim, device=device)
    u, noise = shifted_input(x), torch.randn(T, B, cfg.z_dim, device=device)
    models = {"package": model, "reference": model}
    if previous is not None:
        models[rev] = previous.SRNN(cfg).to(device)
        models[rev].load_state_dict(model.state_dict())
    if onednn:
        models["oneDNN"] = model
    if compiled:
        check_compiler(cfg.replace(compile=True), device)
        models["compiled"] = SRNN(cfg.replace(compile=True)).to(device)
        models["compiled"].load_state_dict(model.state_dict())
    if dvae is not None:
        models["DVAE"] = dvae_srnn.build(dvae, cfg, device)
    optimizers = {p: opt if m is model else torch.optim.Adam(m.parameters(), lr=1e-9) for p, m in models.items()}
    paths = {"package": package, "reference": reference, rev: package, "oneDNN": package, "compiled": package,
             "DVAE": functools.partial(dvae_srnn.loss, bernoulli=cfg.output == "bernoulli")}
    precision = {p: "medium" if p == "oneDNN" else "highest" for p in models}
    times = {p: [] for p in models}
    losses = {}
    for p in models:                                # every loss before any update: same weights
        torch.set_float32_matmul_precision(precision[p])
        with torch.no_grad():
            losses[p] = paths[p](models[p], x, u, noise).item()
    for p in models:                                # warm-up
        torch.set_float32_matmul_precision(precision[p])
        update(models[p], optimizers[p], paths[p], x, u, noise)
    for r in range(repeats):
        names = list(models)
        for p in names[r % len(names):] + names[:r % len(names)]:      # each path in each position in turn
            torch.set_float32_matmul_precision(precision[p])
            sync(device)
            t0 = time.perf_counter()
            update(models[p], optimizers[p], paths[p], x, u, noise)
            sync(device)
            times[p].append(time.perf_counter() - t0)
    torch.set_float32_matmul_precision("highest")
    med = {p: statistics.median(t) for p, t in times.items()}
    params = sum(q.numel() for q in model.parameters())
    print(f"{name:6s} B={B:3d} T={T:3d} params={params / 1e6:5.1f}M  package {med['package'] * 1e3:8.1f} ms  "
          + "  ".join(f"{p} {med[p] * 1e3:8.1f} ms ({med[p] / med['package']:4.2f}x)" for p in models if p != "package")
          + f"  (median of {repeats}, {device}, {torch.get_num_threads()} threads)")
    changes = {p: losses[p] - losses["package"] for p in ("oneDNN", "compiled") if p in losses}
    for p, change in changes.items():
        print(f"{'':6s} loss {p} - loss of the package: {change:.2e} (of {losses['package']:.4f})")
    work = {}
    if dvae is not None:
        work = {p: gflop(models[p], optimizers[p], paths[p], x, u, noise) for p in ("package", "DVAE")}
        print(f"{'':6s} GFLOP per update: package {work['package']:.1f}, DVAE {work['DVAE']:.1f}")
    if profile:
        with torch.profiler.profile() as prof:
            update(model, opt, paths["package"], x, u, noise)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    return {"batch": B, "steps": T, "params": params, "ms": {p: t * 1e3 for p, t in med.items()},
            "loss_change": changes, "loss": losses["package"], **({"gflop": work} if work else {})}


def bench_product(repeats: int, shape=(1600, 800, 900)) -> dict:
    """GFLOP/s of one fp32 product of a music update's largest shape on the CPU, by torch's
    BLAS and by oneDNN (matmul precision "medium"), turn about, and the largest error of each
    against float64 (about 1e-7 for fp32; bf16 would show about 1e-3)."""
    m, k, n = shape
    a, w = torch.randn(m, k), torch.randn(k, n)
    exact = a.double() @ w.double()
    times, errors = {"BLAS": [], "oneDNN": []}, {}
    for r in range(repeats + 1):
        for engine in times:
            torch.set_float32_matmul_precision("medium" if engine == "oneDNN" else "highest")
            t0 = time.perf_counter()
            y = a @ w
            if r:                                   # the first round warms up
                times[engine].append(time.perf_counter() - t0)
            errors[engine] = ((y.double() - exact).abs().max() / exact.abs().max()).item()
    torch.set_float32_matmul_precision("highest")
    gflops = {e: 2 * m * k * n / statistics.median(t) / 1e9 for e, t in times.items()}
    print(f"product {m}x{k} by {k}x{n}: " + ", ".join(f"{e} {gflops[e]:.0f} GFLOP/s (largest error {errors[e]:.1e})"
                                                      for e in times))
    return {"shape": list(shape), "gflops": gflops, "max_relative_error": errors}


def bench_iwae(device: torch.device, repeats: int, pieces: int = 4, steps: int = 1000, samples: int = 100) -> None:
    """The K=100 bound of ``pieces`` music pieces of ``steps`` steps (MuseData's are up to
    about 4,000): the observed path once per batch against once per group of samples."""
    cfg = preset("music")
    torch.manual_seed(0)
    model = SRNN(cfg).to(device).eval()
    x = torch.bernoulli(torch.full((pieces, steps, cfg.x_dim), 0.1, device=device))
    batches = [Batch(x, shifted_input(x), torch.ones(pieces, steps, device=device))]
    runs = {"once per batch": model, "once per group": PerGroup(model)}
    times, bounds = {p: [] for p in runs}, {}
    for _ in range(repeats):
        for p, m in runs.items():
            torch.manual_seed(1)
            sync(device)
            t0 = time.perf_counter()
            bounds[p] = evaluate(m, batches, samples=samples)["iwae_per_step"]
            sync(device)
            times[p].append(time.perf_counter() - t0)
    once, each = (statistics.median(times[p]) for p in runs)
    print(f"IWAE K={samples}, {pieces} pieces x {steps} steps: observed path once per batch {once:6.2f} s, "
          f"once per group {each:6.2f} s ({each / once:4.2f}x); bounds {bounds['once per batch']:.6f} and "
          f"{bounds['once per group']:.6f} (median of {repeats}, {device})")


def estimate(sets: list[str], seconds_per_update: float, device: torch.device) -> None:
    """Training time of each music page under the paper profile, from the measured update."""
    from srnn.datasets.music import dataset
    for name in sets:
        updates = len(dataset(name).train)
        hours = updates * 50 * seconds_per_update / 3600
        print(f"{name:10s} {updates:4d} updates per epoch x 50 epochs x {seconds_per_update * 1e3:.0f} ms = "
              f"{hours:5.2f} h of training at least ({device}; validation and the test bound come on top)")


@command_line
def main(argv: list[str]) -> int:
    p = ArgumentParser(prog="python benchmarks/update_time.py", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="*", default=["music", "timit"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--against", metavar="REV", help="also time the package as it was at this git commit")
    p.add_argument("--iwae", action="store_true", help="time the importance-weighted bound of long pieces")
    p.add_argument("--onednn", action="store_true", help="also time the fp32 products on oneDNN (CPU)")
    p.add_argument("--compile", action="store_true", help="also time the z-chain's step through torch.compile")
    p.add_argument("--dvae", type=Path, metavar="PATH", help="also time the DVAE project's SRNN from its clone here")
    p.add_argument("--estimate", nargs="*", default=[], metavar="SET", help="music sets to estimate a page's time of")
    p.add_argument("--record", type=Path, metavar="PATH", help="write the measurements with their provenance here")
    p.add_argument("--allow-dirty", action="store_true", help="record from a tree with uncommitted changes, "
                                                               "as dirty with a hash of the diff")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    origin = provenance(device, args.allow_dirty) if args.record else {}    # a dirty tree: refused before it runs
    started, t0 = datetime.now(timezone.utc).isoformat(timespec="seconds"), time.time()
    dvae = dvae_srnn.load(args.dvae) if args.dvae else None
    with tempfile.TemporaryDirectory() as tmp:
        previous = previous_package(args.against, Path(tmp)) if args.against else None
        measured = {name: bench(name, device, args.repeats, args.profile, previous, args.against, args.onednn,
                                args.compile, dvae)
                    for name in args.presets}
    product = bench_product(args.repeats) if args.onednn and device.type == "cpu" else None
    if args.iwae:
        bench_iwae(device, max(1, args.repeats // 2))
    if args.estimate and "music" in measured:
        estimate(args.estimate, measured["music"]["ms"]["package"] / 1e3, device)
    if args.record:
        write_json(args.record, {
            "format": 1, "command": " ".join([*(f"{v}={shlex.quote(os.environ[v])}" for v in ENVIRONMENT
                                                if v in os.environ), "python benchmarks/update_time.py",
                                              *map(shlex.quote, argv)]),
            **origin, "started": started, "wall_time_s": time.time() - t0, "repeats": args.repeats,
            "against": args.against, "dvae": dvae_srnn.version(args.dvae) if args.dvae else None,
            "updates": measured, "product": product}, indent=2)
        print(f"recorded in {args.record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
