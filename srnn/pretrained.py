"""Trained models to load without training: the best-on-validation model of a committed run,
its weights in half precision (16-bit floats), with the run's config and data fingerprint.

    from srnn.pretrained import load_pretrained
    model = load_pretrained("jsb")                 # the main JSB Chorales run, shipped
    rolls = model.generate(64, batch_size=4)       # (4, 64, 88) piano rolls

The JSB Chorales model ships in ``data/pretrained/`` (6.5 MB). The other sets' main runs
are registered by the sha256 of their exported file, with no download address yet: where
one is published, its URL goes into ``urls`` below; until then a user who has the file can
copy it into the cache (``$SRNN_CACHE``, default ``~/.cache/srnn``) and it is verified
before use. ``python -m srnn.pretrained export RUN_DIR RECORD_DIR OUT_DIR`` writes such a
file from a run's ``best.pt`` and prints the registry entry and the test bound of the
half-precision weights beside the record's.
"""
from __future__ import annotations

import hashlib
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from .baselines import build_model
from .checkpoint import check_identity, load_checkpoint
from .config import Config
from .errors import ArgumentParser, UserError, command_line
from .files import read_json, write_atomic
from .registry import DataFile, fetch

FORMAT = "srnn-pretrained-1"


@dataclass(frozen=True)
class Pretrained:
    """One trained model: the data set it models, the run it comes from, and its file."""

    dataset: str
    run: str                 # the committed record, results/music/<run>/run.json
    file: DataFile


PRETRAINED = {
    "jsb": Pretrained("jsb", "jsb-npz-smooth-resq", DataFile(
        "jsb-npz-smooth-resq.pt", "dd24024e4eec0e1d0057f21ff7ee1b669224184c62b21dd449e59e6e4d7e4650", 6_521_103,
        urls=(), shipped="pretrained/jsb-npz-smooth-resq.pt")),
    # Exported, not published yet: no address to fetch them from (add it to urls when there is one).
    "nottingham": Pretrained("nottingham", "nottingham-npz-smooth-resq", DataFile(
        "nottingham-npz-smooth-resq.pt", "68f73ccc45076b9b7c1b1c5c46646e5f28c9965d8db00abbe289bd1458c7a6fd",
        6_521_103, urls=())),
    "piano": Pretrained("piano", "piano-npz-smooth-resq", DataFile(
        "piano-npz-smooth-resq.pt", "496aef35504daeb7fcc23d31b5da06171225e35d9ed4f6d1d8fdd240d4dd57c7",
        6_521_103, urls=())),
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
    model.load_state_dict({k: v.float() for k, v in saved["model"].items()})
    model.data = saved["data"]          # the fingerprint of the data it was trained on
    return model.to(device).eval()


def export(run_dir: str | Path, record_dir: str | Path, out_dir: str | Path) -> Path:
    """Write the half-precision weights of ``run_dir/best.pt``, checked to be the model of
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
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "config": ckpt["config"], "data": record["data"], "run": record["id"],
                "code": record["code"], "best_epoch": record["best_epoch"],
                "model": {k: v.half() for k, v in ckpt["model"].items()}}, buffer)
    return write_atomic(Path(out_dir) / f"{record['id']}.pt", buffer.getvalue())


@command_line
def main(argv: list[str], prog: str = "python -m srnn.pretrained") -> int:
    parser = ArgumentParser(prog=prog, description="Export a committed run's model in half precision.")
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
