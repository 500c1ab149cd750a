"""Prepare a speech corpus once, from the shell; :mod:`srnn.datasets.speech` loads the result.

    python -m srnn.speech timit /path/to/TIMIT --out runs/data
    python -m srnn.speech blizzard /path/to/blizzard2013 --out runs/data --skip-bad

It prints the prepared folder, which ``python -m srnn.experiment speech --prepared`` takes.
A wrong folder or an unreadable or damaged file there is one ``error:`` line (exit status 2);
what preparing did to some files (resampled, clipped, cancelled channels, left out as damaged,
empty, too short or silent) is one ``warning:`` line per kind, naming every file left out.
"""
from __future__ import annotations

import sys
import warnings

from .datasets import speech
from .errors import ArgumentParser, command_line


@command_line
def main(argv: list[str], prog: str = "python -m srnn.speech") -> None:
    """Prepare a corpus from the shell and print its folder; see the module's docstring."""
    p = ArgumentParser(prog=prog, description="Prepare a speech corpus once.")
    p.add_argument("corpus", choices=["timit", "blizzard", "folder", "sample"],
                   help="which corpus: TIMIT or Blizzard 2013 (your copy), a folder of audio files, or the "
                        "embedded LibriSpeech sample")
    p.add_argument("source", nargs="?", help="the corpus folder (not for 'sample')")
    p.add_argument("--out", default="runs/data", help="where prepared folders go (default: runs/data)")
    p.add_argument("--permute-seed", type=int, help="permute the samples within every frame (Perm-TIMIT)")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out unreadable or damaged files (e.g. NaN samples), each named and listed in the "
                        "manifest, instead of stopping at the first; empty, too short and silent files are "
                        "always left out and listed")
    args = p.parse_args(argv)
    if (args.source is None) != (args.corpus == "sample"):
        p.error("give the corpus folder for timit, blizzard and folder, and none for sample")
    options = dict(permute_seed=args.permute_seed, skip_bad=args.skip_bad)
    with warnings.catch_warnings():          # restores showwarning afterwards
        warnings.showwarning = lambda message, *_: print(f"warning: {message}", file=sys.stderr)
        if args.corpus == "sample":
            print(speech.prepare_sample(args.out, **options))
        else:
            print(getattr(speech, f"prepare_{args.corpus}")(args.source, args.out, **options))


if __name__ == "__main__":
    raise SystemExit(main())
