"""The ``srnn`` command: every step of the project behind one name.

    srnn prepare sample                                 # a speech corpus, once
    srnn train music --dataset jsb                      # train, select on validation, test, record
    srnn evaluate --pretrained jsb music --dataset jsb  # a trained model's bounds on a data set
    srnn generate --pretrained jsb --pieces 4 --out samples
    srnn results                                        # the paper's tables next to our records
    srnn book --profile smoke                           # execute the book's notebooks (from a clone)
    srnn settings --preset music                        # every setting, the preset's value and meaning

``srnn <command> --help`` tells more; ``python -m srnn.experiment`` and the other modules'
commands keep working. Add ``--debug`` to see the traceback of an error.
"""
from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path

import torch

from .config import settings_help
from .errors import ArgumentParser, UserError, command_line
from .files import folder_replaced_whole

# command: (module whose main() runs it, what it does)
DELEGATED = {"prepare": ("srnn.speech", "prepare a speech corpus once (TIMIT, Blizzard, a folder, the sample)"),
             "train": ("srnn.experiment", "train a model, select it on validation, test it and record the run"),
             "results": ("srnn.results", "print the paper's tables next to the records of results/"),
             "book": ("srnn.runner", "execute the book's notebooks, from a clone (then: jupyter-book build book/)")}
OWN = {"evaluate": "the bounds of a trained model (pretrained or a checkpoint) on a data set",
       "generate": "piano rolls from a trained music model, as MIDI and WAV, new or continuing a test piece",
       "settings": "every config setting with its default (or a preset's value) and meaning"}


@command_line
def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        title, examples, rest = __doc__.replace("``", "").split("\n\n", 2)
        width = max(map(len, {**DELEGATED, **OWN}))
        print(f"{title}\n\ncommands:")
        for name, what in {**{k: v[1] for k, v in DELEGATED.items()}, **OWN}.items():
            print(f"  {name:{width}s}  {what}")
        print(f"\nexamples:\n{examples}\n\n{rest.strip()}")
        return 0
    command, rest = argv[0], argv[1:]
    if command in DELEGATED:
        return importlib.import_module(DELEGATED[command][0]).main(rest, prog=f"srnn {command}") or 0
    if command in OWN:
        return {"evaluate": evaluate_command, "generate": generate_command, "settings": settings_command}[command](rest)
    raise UserError(f"unknown command {command!r}; the commands are {', '.join([*DELEGATED, *OWN])} "
                    f"(see srnn --help)")


def settings_command(argv: list[str]) -> int:
    from .config import BASELINE_PRESETS, PRESETS

    parser = ArgumentParser(prog="srnn settings", description=OWN["settings"] + ". A run takes a preset "
                            "(--preset) and changes fields of it with --set FIELD=VALUE.")
    parser.add_argument("--preset", choices=sorted({**PRESETS, **BASELINE_PRESETS}), metavar="NAME",
                        help="show this preset's values, marking those it changes from the defaults "
                             f"(one of: {', '.join(sorted({**PRESETS, **BASELINE_PRESETS}))})")
    args = parser.parse_args(argv)
    print(settings_help(args.preset))
    return 0


def _pretrained_help() -> str:
    from .pretrained import released

    return (f"a released model by name: {', '.join(released())} (each with its card in data/pretrained/; "
            "the exact float32 copy where it is in $SRNN_CACHE, else the 8-bit copy in the package)")


def _model_options(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--pretrained", metavar="NAME", help=_pretrained_help())
    which.add_argument("--checkpoint", help="a run's checkpoint, e.g. runs/jsb-npz-smooth-resq/best.pt")
    parser.add_argument("--seed", type=int, help="seeds the sampling (default: evaluate takes the run's own seed, "
                        "as its record did; generate 0)")


def _load(args) -> torch.nn.Module:
    from .pretrained import load_pretrained
    from .training.checkpoint import load_model
    return load_pretrained(args.pretrained) if args.pretrained else load_model(args.checkpoint)


def evaluate_command(argv: list[str]) -> int:
    from .experiment import check_fits
    from .pretrained import released
    from .training.evaluate import evaluate, recorded_elbo

    parser = ArgumentParser(prog="srnn evaluate", description=OWN["evaluate"] + ": the ELBO and the "
                            "importance-weighted bound per step, averaged over sequences as the authors' code")
    _model_options(parser)
    parser.add_argument("domain", choices=["music", "speech"], help="the kind of data: music (needs --dataset) "
                        "or speech (needs --prepared)")
    parser.add_argument("--dataset", choices=["jsb", "nottingham", "muse", "piano"],
                        help="music: the data set (default: the one a pretrained model was trained on)")
    parser.add_argument("--form", default="npz", choices=["npz", "classic", "pickle"], help="music: its form")
    parser.add_argument("--prepared", help="speech: a folder that srnn prepare made")
    parser.add_argument("--split", default="test", choices=["valid", "test"],
                        help="which split to score (default: test)")
    parser.add_argument("--paths", type=int, help="sample paths the ELBO is averaged over (default: as the "
                        "record of a pretrained model, else 10)")
    parser.add_argument("--iwae-samples", type=int, default=1, help="K of the importance-weighted bound (1: none)")
    args = parser.parse_args(argv)
    if args.iwae_samples < 1 or (args.paths is not None and args.paths < 1):
        parser.error("--iwae-samples and --paths must be at least 1")
    model = _load(args)
    release = released()[args.pretrained] if args.pretrained else None
    paths = args.paths or (release.paths if release else 10)
    seed = model.cfg.seed if args.seed is None else args.seed
    cfg = model.cfg
    if args.domain == "music":
        from .datasets.music import dataset
        args.dataset = args.dataset or (release.dataset if release else None)
        if not args.dataset:
            parser.error("music needs --dataset")
        data = dataset(args.dataset, args.form, batch_size=cfg.batch_size, window=cfg.window)
    else:
        from .datasets.speech import load_prepared
        if not args.prepared:
            parser.error("speech needs --prepared FOLDER")
        # Only the valid and test sequences are scored, in batches of the model's size: a corpus with
        # fewer training chunks than that batch is evaluated all the same.
        data = load_prepared(args.prepared, batch_size=1, eval_batch_size=cfg.batch_size, window=cfg.window)
    check_fits(cfg, args.domain, data)
    batches = getattr(data, args.split)
    found = recorded_elbo(model, batches, seed, paths)
    line = (f"{data.name} {args.split}: ELBO per step {found['elbo_per_step_seq']:.4f} (mean over sequences), "
            f"{found['elbo_per_step']:.4f} (over all steps); {paths} sample path(s), seed {seed}")
    if args.iwae_samples > 1:
        torch.manual_seed(seed)
        iwae = evaluate(model, batches, samples=args.iwae_samples)["iwae_per_step_seq"]
        line += f"; IWAE K={args.iwae_samples} {iwae:.4f}"
    print(line)
    if release and args.split == "test" and args.dataset == release.dataset and (seed, paths) == (release.seed,
                                                                                                   release.paths):
        got, record = found["elbo_per_step_seq"], release.record_test
        agree = "the same to the last digit" if got == record else f"this copy {got - record:+.6f} from it"
        print(f"{args.pretrained}, {model.copy} copy: the record says {record:.6f} ({agree}); the shipped "
              f"8-bit copy {release.shipped_test:.6f} (data/pretrained/{args.pretrained}.md)")
    return 0


def generate_command(argv: list[str]) -> int:
    from .experiment import music_samples

    parser = ArgumentParser(prog="srnn generate", description=OWN["generate"] + ": rolls.npz, one MIDI file "
                            "per piece and the first piece's opening as a WAV clip")
    _model_options(parser)
    parser.add_argument("--out", required=True,
                        help="the folder to write into: new or empty, or with --overwrite one that an earlier "
                             "srnn generate wrote, which is then replaced whole")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier srnn generate output in --out, whole (its old pieces never stay "
                             "beside the new ones)")
    parser.add_argument("--pieces", type=int, default=4, help="how many pieces (default: 4)")
    parser.add_argument("--steps", type=int, default=64, help="new steps per piece (default: 64)")
    parser.add_argument("--step-seconds", type=float, default=0.25, help="the duration of one step (default: 0.25)")
    parser.add_argument("--continue-piece", type=int, metavar="N",
                        help="continue test piece N of the model's data set instead of starting from silence")
    parser.add_argument("--prefix-steps", type=int, default=16,
                        help="how many steps of that piece open each new one (default: 16)")
    args = parser.parse_args(argv)
    if min(args.pieces, args.steps, args.prefix_steps) < 1 or args.step_seconds <= 0:
        parser.error("--pieces, --steps and --prefix-steps must be at least 1, --step-seconds above 0")
    out = Path(args.out)
    _check_output_folder(out)
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise UserError(f"--out {out} already holds files of an earlier output; name a new folder, or add "
                        f"--overwrite to replace it whole")
    model = _load(args)
    if model.cfg.output != "bernoulli":
        raise UserError(f"{args.pretrained or args.checkpoint} is a speech model: srnn generate writes music; "
                        f"speech runs write their samples as WAV into their record")
    prefix = None
    if args.continue_piece is not None:
        prefix = _test_piece(model, args.continue_piece, args.prefix_steps).expand(args.pieces, -1, -1)
    torch.manual_seed(args.seed or 0)
    with folder_replaced_whole(out) as fresh:
        written = music_samples(model, fresh, args.pieces, args.steps, args.step_seconds, prefix)
    for path in written:
        print(out / path.relative_to(fresh))
    return 0


GENERATED = re.compile(r"rolls\.npz|sample\d+\.(mid|wav)")      # the files srnn generate writes


def _check_output_folder(out: Path) -> None:
    """Refuse an output folder that holds anything srnn generate did not write: the whole
    folder is replaced, and a user's own files must not go with it."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder: give a new folder for the samples")
    foreign = sorted(p.name for p in out.iterdir() if not GENERATED.fullmatch(p.name)) if out.is_dir() else []
    if foreign:
        listed = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise UserError(f"--out {out} holds files that srnn generate did not write ({listed}), and the output "
                        f"folder is replaced whole: give a new or empty folder")


def _test_piece(model, index: int, steps: int) -> torch.Tensor:
    """The first ``steps`` steps of test piece ``index`` of the data the model was trained on."""
    from .datasets.music import pieces
    data = getattr(model, "data", None)
    if not data or "dataset" not in data:
        raise UserError("--continue-piece needs a model that names its music data (a pretrained model)")
    found = pieces(data["dataset"], data["form"], "test")
    if not 0 <= index < len(found):
        raise UserError(f"--continue-piece {index}: the {data['dataset']} test set has pieces 0..{len(found) - 1}")
    if len(found[index]) < steps:
        raise UserError(f"test piece {index} has only {len(found[index])} steps; choose --prefix-steps <= that")
    return torch.as_tensor(found[index][:steps], dtype=torch.float32)[None]


if __name__ == "__main__":
    sys.exit(main())
