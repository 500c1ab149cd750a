"""The paper's tables next to the committed records: ``python -m srnn.results``.

The records are read from ``--results FOLDER``, or else from ``results/`` in the current
folder, or else from the clone that holds this package; where none of these holds a record,
it says where it looked. With ``--markdown`` it prints the "where we stand" summary, with
``--readme`` it writes that summary into the ``README.md`` of the records' folder, between
its markers.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .errors import ArgumentParser, UserError, command_line
from .files import write_atomic
from .records.report import where_we_stand
from .records.store import load_runs
from .records.tables import print_tables

CLONE_RESULTS = Path(__file__).resolve().parent.parent / "results"     # where the package lies in a clone
IN_CLONE = (CLONE_RESULTS.parent / "pyproject.toml").is_file()          # not so for `pip install .`
STAND = ("<!-- where we stand: python -m srnn.results --readme -->", "<!-- end of where we stand -->")


@command_line
def main(argv: list[str], prog: str = "python -m srnn.results") -> int:
    """Print the comparison tables from the committed records: python -m srnn.results"""
    parser = ArgumentParser(prog=prog, description="The paper's tables next to the records of results/ "
                            "(of --results, or of the current folder, or of the clone that holds srnn).")
    parser.add_argument("--results", type=Path, metavar="FOLDER",
                        help="the folder of the records (a clone's results/; default: ./results, else the clone's)")
    parser.add_argument("--markdown", action="store_true", help="print the 'where we stand' summary in markdown")
    parser.add_argument("--readme", action="store_true", help="write that summary into the README.md of the records' "
                        "folder (a clone's results/README.md)")
    args = parser.parse_args(argv)
    folder = records_folder(args.results)
    runs = load_runs(folder)
    if args.readme:
        readme = folder / "README.md"
        if not readme.is_file():
            raise UserError(f"--readme writes into {readme}, which does not exist: run it in a clone of the repository")
        write_atomic(readme, readme_with(readme.read_text(), where_we_stand(runs)))
    elif args.markdown:
        print(where_we_stand(runs))
    else:
        print_tables(runs)
    return 0


def records_folder(given: Path | None, here: Path = Path("results"),
                   clone: Path | None = CLONE_RESULTS if IN_CLONE else None) -> Path:
    """The folder of records to read: ``given``, else ``here`` (./results), else the results/
    of the clone the package runs from (none for an installed package); one that holds no
    record is refused, naming where it looked."""
    looked = [given] if given is not None else list(dict.fromkeys(p for p in (here.resolve(), clone) if p))
    for folder in looked:
        if any(folder.glob("*/*/run.json")):
            return folder
    raise UserError(f"no run record (<domain>/<id>/run.json) in {' or '.join(map(str, looked))}: run this in a clone "
                    f"of the repository, or give --results FOLDER")


def readme_with(text: str, summary: str) -> str:
    """``text`` with the part between the STAND markers replaced by ``summary``."""
    start, end = text.index(STAND[0]) + len(STAND[0]), text.index(STAND[1])
    return text[:start] + "\n" + summary + "\n" + text[end:]


if __name__ == "__main__":
    sys.exit(main())
