"""Time one training update (forward, backward, Adam step) of the package's SRNN against the
plain step-by-step reference, side by side in one process, at the paper's batch sizes.

    python benchmarks/update_time.py                    # music and timit presets, CPU
    python benchmarks/update_time.py --device cuda --profile

Both paths get the same parameters, data and noise; repetitions alternate between them so
that any other load on the machine slows both alike. ``--profile`` prints where the time of
one update of the package goes (torch.profiler, top operators by self time).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from srnn.batching import shifted_input
from srnn.config import preset
from srnn.model import SRNN
from srnn.objective import training_loss
from srnn.reference import reference_forward


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


def bench(name: str, device: torch.device, repeats: int, profile: bool) -> None:
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
    paths = {"package": package, "reference": reference}
    times = {p: [] for p in paths}
    for f in paths.values():                        # warm-up
        update(model, opt, f, x, u, noise)
    for _ in range(repeats):
        for p, f in paths.items():
            sync(device)
            t0 = time.perf_counter()
            update(model, opt, f, x, u, noise)
            sync(device)
            times[p].append(time.perf_counter() - t0)
    fast, ref = statistics.median(times["package"]), statistics.median(times["reference"])
    params = sum(q.numel() for q in model.parameters())
    print(f"{name:6s} B={B:3d} T={T:3d} params={params / 1e6:5.1f}M  package {fast * 1e3:8.1f} ms  "
          f"reference {ref * 1e3:8.1f} ms  reference/package = {ref / fast:5.2f}x  "
          f"(median of {repeats}, {device}, {torch.get_num_threads()} threads)")
    if profile:
        with torch.profiler.profile() as prof:
            update(model, opt, paths["package"], x, u, noise)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="*", default=["music", "timit"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    for name in args.presets:
        bench(name, torch.device(args.device), args.repeats, args.profile)


if __name__ == "__main__":
    main()
