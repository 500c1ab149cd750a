"""Figures and tables for the book's notebooks.

Each function draws one kind of picture on a fresh matplotlib figure and returns it, so a
notebook cell ends with the call and myst-nb renders the figure with the caption given in
the cell's metadata. Tables are MyST markdown with a caption and a label.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..datasets.music import LOWEST_NOTE  # MIDI note of column 0 of a piano roll


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence], caption: str, name: str,
                   empty: str = "no run yet"):
    """A MyST ``{table}`` with a caption and a label, displayed as markdown output; a table
    without rows shows one row that says ``empty``."""
    from IPython.display import Markdown

    from ..records.report import pipe_table

    rows = rows or [(empty,) + ("-",) * (len(headers) - 1)]
    return Markdown("\n".join([f"```{{table}} {caption}", f":name: {name}", "", *pipe_table(headers, rows), "```"]))


def play(path):
    """An audio player for a WAV file, scaled to its peak as IPython scales an array: every
    page plays its clips the same way, so that their loudness does not depend on the page."""
    import soundfile
    from IPython.display import Audio

    audio, rate = soundfile.read(str(path), dtype="float32")
    return Audio(audio.T if audio.ndim > 1 else audio, rate=rate, normalize=True)


def zoom(ax, series: Sequence[Sequence[float]], skip: float = 0.1) -> None:
    """Fit the y-axis to where the curves converge: their values after the first ``skip``
    share of each (at least its first point when it has five or more), with a margin; the
    early epochs then run off the panel instead of flattening the rest."""
    kept = [v for ys in series for v in ys[max(int(len(ys) * skip), 1 if len(ys) >= 5 else 0):]
            if np.isfinite(v)]
    if len(kept) < 2:
        return
    lo, hi = min(kept), max(kept)
    pad = 0.08 * (hi - lo) or 0.05 * abs(hi) or 0.1
    ax.set_ylim(lo - pad, hi + pad)


def training_curves(history: list[dict], title: str = ""):
    """The bound and the KL term per step against epochs, from a run's ``history.jsonl``:
    training (beta-weighted as trained, averaged over the epoch) and validation (beta = 1),
    with the KL temperature beta on a second axis; each panel zoomed where the curves
    converge (:func:`zoom`)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, key, label in ((left, "elbo_per_step", "ELBO per step"), (right, "kl_per_step", "KL per step")):
        series = []
        for split, style in (("train", "-"), ("valid", "o--")):
            points = [(r["epoch"], r[f"{split}_{key}"]) for r in history if f"{split}_{key}" in r]
            if points:
                ax.plot(*zip(*points), style, ms=3, label=split)
                series.append([p[1] for p in points])
        zoom(ax, series)
        ax.set(xlabel="epoch", ylabel=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    beta = right.twinx()
    beta.plot(epochs, [r["beta"] for r in history], ":", color="gray", label="beta (end of epoch)")
    beta.set(ylabel="KL temperature beta", ylim=(0, 1.05))
    left.legend()
    right.legend(*[sum(pair, []) for pair in zip(right.get_legend_handles_labels(),
                                                  beta.get_legend_handles_labels())])
    fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


def validation_curves(runs: dict[str, dict], keys: Sequence[str], title: str = ""):
    """Validation metrics (``valid_<key>`` of each run's history) against epochs, one panel
    per key, one line per run: how several runs of one comparison train."""
    return _validation_panels([(title, runs, key) for key in keys], title)


def validation_by_group(groups: dict[str, dict[str, dict]], key: str, title: str = "", first_epoch: int = 1):
    """One metric, one panel per group of runs (e.g. per data set), one line per run, from
    ``first_epoch`` on (later epochs, where runs differ little, get the whole height)."""
    return _validation_panels([(name, runs, key) for name, runs in groups.items()], title, first_epoch)


def _validation_panels(panels: Sequence[tuple[str, dict[str, dict], str]], title: str, first_epoch: int = 1):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.4), squeeze=False)
    for ax, (name, runs, key) in zip(axes[0], panels):
        series = []
        for label, record in runs.items():
            points = [(h["epoch"], h[f"valid_{key}"]) for h in record["history"]
                      if f"valid_{key}" in h and h["epoch"] >= first_epoch]
            if not record["history"]:          # said in the legend, not left out without a word
                label += " (no history.jsonl: not drawn)"
            ax.plot(*(zip(*points) if points else ([], [])), "o-", ms=2, label=label)
            if points:
                series.append([p[1] for p in points])
        zoom(ax, series)
        ax.set(xlabel="epoch", ylabel="validation " + key.replace("_", " ").replace("elbo", "ELBO").replace("kl", "KL"))
        if name != title:
            ax.set_title(name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax is axes[0, 0] or runs is not panels[0][1]:     # one legend per set of runs
            ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


def optimizer_regime(runs: dict[str, dict]):
    """Per epoch, from each run's history: the mean gradient norm before clipping and the
    share of weights whose Adam denominator is mostly epsilon (see srnn.training.train)."""
    import matplotlib.pyplot as plt

    fig, (norm, share) = plt.subplots(1, 2, figsize=(10, 3.4))
    for label, record in runs.items():
        history = [h for h in record["history"] if "adam_eps_share" in h]
        epochs = [h["epoch"] for h in history]
        norm.plot(epochs, [h["grad_norm"] for h in history], "o-", ms=2, label=label)
        share.plot(epochs, [h["adam_eps_share"] for h in history], "o-", ms=2, label=label)
    norm.set(xlabel="epoch", ylabel="gradient norm before clipping", yscale="log")
    share.set(xlabel="epoch", ylabel="share of weights with sqrt(v) < eps", ylim=(0, 1))
    for ax in (norm, share):
        ax.grid(alpha=0.3)
    share.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def piano_rolls(rolls: Sequence[np.ndarray], titles: Sequence[str], columns: int | None = None):
    """(T, 88) rolls side by side (in rows of ``columns``, all in one row by default): time to
    the right, MIDI note up, active keys dark. A roll of ``None`` leaves its panel blank."""
    import matplotlib.pyplot as plt

    columns = columns or len(rolls)
    rows = -(-len(rolls) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(rolls):]:
        ax.axis("off")
    for ax, roll, title in zip(axes.flat, rolls, titles):
        if roll is None:                # a blank panel, to keep a row's rolls together
            ax.axis("off")
            continue
        roll = np.asarray(roll)
        ax.imshow(roll.T, origin="lower", aspect="auto", cmap="Greys", interpolation="nearest",
                  extent=(0, len(roll), LOWEST_NOTE - 0.5, LOWEST_NOTE + roll.shape[1] - 0.5))
        ax.set(xlabel="time step", ylabel="MIDI note")
        ax.set_title(title, fontsize="medium" if len(title) < 40 else "small")
    fig.tight_layout()
    plt.close(fig)
    return fig


def piano_roll_rows(rows: Sequence[tuple[Sequence[np.ndarray], Sequence[str]]]):
    """One figure of rolls, a row per ``(rolls, titles)``; a shorter row ends in blank panels."""
    columns = max(len(rolls) for rolls, _ in rows)
    blank = [(None, "")] * columns
    panels = [p for rolls, titles in rows for p in [*zip(rolls, titles), *blank[len(rolls):]]]
    return piano_rolls([p[0] for p in panels], [p[1] for p in panels], columns)


def waveforms(signals: Sequence[np.ndarray], titles: Sequence[str], sample_rate: int,
              frame: int | None = None):
    """Audio samples against seconds, one panel per signal; with ``frame``, the frame
    boundaries (every ``frame`` samples) as thin vertical lines."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(signals), 1, figsize=(10, 1.9 * len(signals)), squeeze=False)
    for ax, signal, title in zip(axes[:, 0], signals, titles):
        t = np.arange(len(signal)) / sample_rate
        ax.plot(t, signal, lw=0.6)
        if frame:
            for edge in range(0, len(signal) + 1, frame):
                ax.axvline(edge / sample_rate, color="gray", lw=0.3, alpha=0.5)
        ax.set(title=title, ylabel="amplitude", xlim=(0, t[-1] if len(t) else 1))
    axes[-1, 0].set(xlabel="seconds")
    fig.tight_layout()
    plt.close(fig)
    return fig


def kl_per_dimension(kl: dict[str, np.ndarray], threshold: float):
    """Average KL of each latent dimension, sorted, one line per run; dimensions above
    ``threshold`` nats per step count as active units."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.8))
    top = threshold
    for label, values in kl.items():
        values = np.sort(np.asarray(values))[::-1]
        active = int((values > threshold).sum())
        top = max(top, float(values.max()))
        ax.plot(np.arange(1, len(values) + 1), values, "o-", ms=3, label=f"{label} ({active} active)", clip_on=False)
    ax.axhline(threshold, color="gray", ls=":", label=f"threshold {threshold}")
    ax.set(xlabel="latent dimension (sorted)", ylabel="KL per step (nats)")
    ax.set_yscale("symlog", linthresh=threshold)
    ax.set_ylim(0, top * 2)          # the largest dimensions inside the panel, with room above
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)   # beside, not over, the lines
    ax.grid(alpha=0.3)
    fig.tight_layout()
    plt.close(fig)
    return fig
