"""Figures and tables for the book's notebooks.

Each function draws one kind of picture on a fresh matplotlib figure and returns it, so a
notebook cell ends with the call and myst-nb renders the figure with the caption given in
the cell's metadata. Tables are MyST markdown with a caption and a label.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

LOWEST_KEY = 21   # MIDI note of column 0 of an 88-key piano roll (A0)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence], caption: str, name: str):
    """A MyST ``{table}`` with a caption and a label, displayed as markdown output."""
    from IPython.display import Markdown

    if any(len(r) != len(headers) for r in rows):
        raise ValueError(f"every row of table {name!r} needs {len(headers)} cells")
    lines = [f"```{{table}} {caption}", f":name: {name}", "",
             "| " + " | ".join(map(str, headers)) + " |",
             "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return Markdown("\n".join(lines + ["```"]))
