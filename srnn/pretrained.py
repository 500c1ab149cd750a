"""Trained models to load without training: the best-on-validation model of a committed run,
its weights stored in 8 bits, with the run's config and data fingerprint.

    from srnn.pretrained import load_pretrained
    model = load_pretrained("jsb")                 # the main JSB Chorales run, shipped
    rolls = model.generate(64, batch_size=4)       # (4, 64, 88) piano rolls

Every weight matrix is stored as int8 with one float16 scale per row (its largest magnitude
over 127), the vectors (biases) as float16: 3.3 MB for the music model, a quarter of its
float32 size. The JSB Chorales model ships in ``data/pretrained/``. The other sets' main
runs are registered by the sha256 of their exported file, with no download address yet:
where one is published, its URL goes into ``urls`` below; until then a user who has the
file can copy it into the cache (``$SRNN_CACHE``, default ``~/.cache/srnn``) and it is
verified before use. ``python -m srnn.pretrained export RUN_DIR RECORD_DIR OUT_DIR`` writes
such a file from a run's ``best.pt`` and prints its registry entry; ``srnn evaluate
--pretrained NAME`` measures what the 8-bit weights score.
"""
from __future__ import annotations

import hashlib
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import Config
from .datasets.registry import DataFile, fetch
from .errors import ArgumentParser, UserError, command_line
from .files import read_json, write_atomic
from .models.baselines import build_model
from .training.checkpoint import check_identity, load_checkpoint

FORMAT = "srnn-pretrained-2"


@dataclass(frozen=True)
class Pretrained:
    """One trained model: the data set it models, the run it comes from, and its file."""

    dataset: str
    run: str                 # the committed record, results/music/<run>/run.json
    file: DataFile


PRETRAINED = {
    "jsb": Pretrained("jsb", "jsb-npz-smooth-resq", DataFile(
        "jsb-npz-smooth-resq.pt", "8534672104b520ec8c7765b82b19907ceecdaec5d43ba0c459b80b82c735f3b8", 3_291_877,
        urls=(), shipped="pretrained/jsb-npz-smooth-resq.pt")),
    # Exported, not published yet: no address to fetch them from (add it to urls when there is one).
    "nottingham": Pretrained("nottingham", "nottingham-npz-smooth-resq", DataFile(
        "nottingham-npz-smooth-resq.pt", "f512df70e0e1b71e0ea221685b0b75c9a7117b1e6be1a0b17986b1561a1562ca",
        3_291_877, urls=())),
    "piano": Pretrained("piano", "piano-npz-smooth-resq", DataFile(
        "piano-npz-smooth-resq.pt", "e8e6525fd438a7916eafcf12c2add33a5e6d3ce2e08b18fa8325c6a511e415b7",
        3_291_877, urls=())),
}


class PretrainedError(UserError, ValueError):
    """An unknown or unusable pretrained model."""


def load_pretrained(name: str, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The pretrained model ``name`` (see PRETRAINED), verified, in float32 and eval mode."""
    if name not in PRETRAINED:
        raise PretrainedError(f"no pretrained model {name!r}; there are {sorted(PRETRAINED)}")
    path = fetch(PRETRAINED[name].file)
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise PretrainedError(f"{path} is not an srnn pretrained model of format {FORMAT}")
    model = build_model(Config.from_dict(saved["config"]))
    model.load_state_dict({k: dequantize(v, saved["scales"].get(k)) for k, v in saved["model"].items()})
    model.data = saved["data"]          # the fingerprint of the data it was trained on
    return model.to(device).eval()


def quantize(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A matrix as int8 with a float16 scale per row; a vector as float16 (no scale)."""
    if weight.dim() < 2:
        return weight.half(), None
    scale = (weight.abs().amax(1, keepdim=True) / 127).clamp_min(1e-12).half()
    return torch.round(weight / scale.float()).clamp(-127, 127).to(torch.int8), scale


def dequantize(stored: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
    """The float32 weight that :func:`quantize` stored."""
    return stored.float() if scale is None else stored.float() * scale.float()


def export(run_dir: str | Path, record_dir: str | Path, out_dir: str | Path) -> Path:
    """Write the 8-bit weights of ``run_dir/best.pt``, checked to be the model of
    the committed record in ``record_dir``: the same config, the same data (where the
    checkpoint names it; older ones do not), and the record's best epoch with its
    validation bound."""
    run_dir, record_dir = Path(run_dir), Path(record_dir)
    record = read_json(record_dir / "run.json")
    path = run_dir / "best.pt"
    ckpt = load_checkpoint(path)
    check_identity({**ckpt, "data": ckpt.get("data", record["data"])}, Config.from_dict(record["config"]),
                   record["data"], path, "export it")
    saved = ckpt["history"][-1]
    if (saved["epoch"], saved["valid_elbo_per_step"]) != (record["best_epoch"], record["valid_best"]["elbo_per_step"]):
        raise PretrainedError(f"{path} holds epoch {saved['epoch']} (validation {saved['valid_elbo_per_step']}), "
                              f"the record's best is epoch {record['best_epoch']} "
                              f"({record['valid_best']['elbo_per_step']}): it is not that run's model")
    stored = {k: quantize(v) for k, v in ckpt["model"].items()}
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "config": ckpt["config"], "data": record["data"], "run": record["id"],
                "code": record["code"], "best_epoch": record["best_epoch"],
                "model": {k: q for k, (q, _) in stored.items()},
                "scales": {k: s for k, (_, s) in stored.items() if s is not None}}, buffer)
    return write_atomic(Path(out_dir) / f"{record['id']}.pt", buffer.getvalue())


@command_line
def main(argv: list[str], prog: str = "python -m srnn.pretrained") -> int:
    parser = ArgumentParser(prog=prog, description="Export a committed run's model in 8 bits.")
    sub = parser.add_subparsers(dest="command", required=True)
    out = sub.add_parser("export", help="write RUN_DIR/best.pt as OUT_DIR/<run>.pt")
    out.add_argument("run_dir")
    out.add_argument("record_dir")
    out.add_argument("out_dir")
    args = parser.parse_args(argv)
    path = export(args.run_dir, args.record_dir, args.out_dir)
    data = path.read_bytes()
    print(f"{path}: sha256 {hashlib.sha256(data).hexdigest()}, {len(data):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
