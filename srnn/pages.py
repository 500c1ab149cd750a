"""What a page of the book shows: the records of its runs, or how to make a missing one.

A page names its runs by id (``results/<domain>/<id>/run.json``). It shows the committed
record (under ``results/``, trained with the paper's settings) when there is one and, in
a batch whose profile records elsewhere (``smoke``: ``runs/smoke/results``), also the
record that batch just trained, labelled with its profile. A run that has no committed
record is reported with the command that makes it, never silently left out.
"""
from __future__ import annotations

from pathlib import Path

from .results import load_run

COMMITTED = "results"


def find_record(domain: str, run_id: str, results_dir: str = COMMITTED) -> dict | None:
    """The record of ``run_id`` under ``results_dir``, or None where there is none yet."""
    path = Path(results_dir) / domain / run_id / "run.json"
    return load_run(path) if path.is_file() else None


def batch_record(domain: str, run_id: str, results_dir: str) -> dict | None:
    """The record this batch wrote, when its profile records elsewhere than results/."""
    return None if Path(results_dir) == Path(COMMITTED) else find_record(domain, run_id, results_dir)


def missing_run(title: str, domain: str, run_id: str, page: str, corpus_env: str = "") -> str:
    """Markdown for a run that has no committed record: what is missing and the command."""
    env = f"{corpus_env}=/path/to/the/corpus " if corpus_env else ""
    return (f"**No committed run yet** for {title}: `{COMMITTED}/{domain}/{run_id}/run.json` does not "
            f"exist. To make it, run on a GPU box\n\n"
            f"```bash\n{env}python -m srnn.runner --profile paper --device cuda --pages {page}\n```\n\n"
            f"and commit `{COMMITTED}/{domain}/{run_id}/`.")


def run_summary(record: dict) -> str:
    """Markdown: what the run is, where and how long it ran, and the command that remakes it."""
    still = " (still improving)" if record["still_improving"] else ""
    return (f"Run `{record['id']}`, profile `{record['profile']}`: {record['epochs']} epochs on "
            f"{record['hardware']['device']} in {record['wall_time_s'] / 60:.1f} min; best validation "
            f"bound at epoch {record['best_epoch']}{still}. Reproduce with `{record['command']}`.")
