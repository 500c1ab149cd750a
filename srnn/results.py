"""The paper's tables next to the committed records: ``python -m srnn.results``.

With ``--markdown`` it prints the "where we stand" summary, with ``--readme`` it writes that
summary into ``results/README.md`` between its markers.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .errors import ArgumentParser, command_line
from .files import write_atomic
from .records.report import where_we_stand
from .records.store import load_runs
from .records.tables import print_tables

README = Path(__file__).resolve().parent.parent / "results" / "README.md"
STAND = ("<!-- where we stand: python -m srnn.results --readme -->", "<!-- end of where we stand -->")


@command_line
def main(argv: list[str], prog: str = "python -m srnn.results") -> int:
    """Print the comparison tables from the committed records: python -m srnn.results"""
    parser = ArgumentParser(prog=prog, description="The paper's tables next to the "
                            "committed records of results/.")
    parser.add_argument("--markdown", action="store_true", help="print the 'where we stand' summary in markdown")
    parser.add_argument("--readme", action="store_true", help="write that summary into results/README.md")
    args = parser.parse_args(argv)
    runs = load_runs(README.parent)
    if args.readme:
        write_atomic(README, readme_with(README.read_text(), where_we_stand(runs)))
    elif args.markdown:
        print(where_we_stand(runs))
    else:
        print_tables(runs)
    return 0


def readme_with(text: str, summary: str) -> str:
    """``text`` with the part between the STAND markers replaced by ``summary``."""
    start, end = text.index(STAND[0]) + len(STAND[0]), text.index(STAND[1])
    return text[:start] + "\n" + summary + "\n" + text[end:]


if __name__ == "__main__":
    sys.exit(main())
