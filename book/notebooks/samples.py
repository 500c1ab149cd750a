# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Samples
#
# A generative model can be listened to. Each run of the smooth+Resq model wrote a few
# sequences sampled from $p_\theta(x_{1:T})$ when it finished (`SRNN.generate`): the
# deterministic state is driven by the model's own previous sample, $u_t = x_{t-1}$, and
# every $z_t$ is drawn from the prior $p_\theta(z_t \mid z_{t-1}, d_t)$. This page shows
# what the released models do on every music set, then the committed runs' samples and those
# of the runs this build trained.

# %% tags=["parameters"]
profile = "smoke"
results_dir = "results"
music_sets = ["jsb", "nottingham", "muse", "piano"]
speech_sets = ["sample", "timit", "blizzard"]
pieces = 3             # piano rolls drawn per run

# %% tags=["remove-input"]
import tempfile
from pathlib import Path

import numpy as np
import soundfile
from IPython.display import Markdown, display
from myst_nb import glue

from srnn.book.pages import batch_record, committed_record, ran_on, released_samples
from srnn.book.plots import piano_roll_rows, piano_rolls, play, waveforms
from srnn.records.model_comparison import MODEL_TITLES
from srnn.records.paper import MUSIC_NAMES
from srnn.records.store import run_name
from srnn.records.tables import protocol


def runs_with_samples(domain, datasets):
    """(label, record) for every committed or freshly trained run that wrote samples."""
    found = []
    for dataset in datasets:
        name = run_name(domain, dataset)
        for record in (committed_record(domain, name), batch_record(domain, name, results_dir)):
            if record is not None and record.get("samples"):
                first = ", first protocol" if protocol(record) == "first" else ""
                found.append((f"{dataset}, {record['profile']} profile{first}, {ran_on(record)}", record))
    return found


music = runs_with_samples("music", music_sets)
speech = runs_with_samples("speech", speech_sets)
glue("music_runs", len(music), display=False)
glue("speech_runs", len(speech), display=False)
print(f"music runs with samples: {[label for label, _ in music]}")
print(f"speech runs with samples: {[label for label, _ in speech]}")

# %% [markdown]
# ## The released models
#
# For each music set, the SRNN and the VRNN that the search protocol chose on validation (and
# the RNN with the paper's settings, once its run's checkpoint is exported) are released with
# the package (`srnn.pretrained`; each has a model card in `data/pretrained/`).
# Each draws two new pieces from silence, and continues the opening 16 steps of its set's first
# test piece twice (the piano rolls' first 16 steps are that piece, the rest the model's). The
# players play the opening of the first of each. `srnn generate --pretrained NAME` makes the
# same pieces, with `--continue-piece 0` the continuations.

# %% tags=["remove-input"]
released = released_samples(Path(tempfile.mkdtemp()), seed=0)
glue("released_models", len(released), display=False)
print(f"released models: {[m['name'] for m in released]}")

# %% tags=["remove-input"] mystnb={"figure": {"caption": "What each released model plays, one row per model: two new pieces and two continuations of its set's first test piece (its first 16 steps are the piece's)."}}
kinds = ("new 1", "new 2", "continued 1", "continued 2")
rolls = [roll for m in released for part in ("new", "continued") for roll in np.load(m["folder"] / part / "rolls.npz")["rolls"]]
if released:
    display(piano_rolls(rolls, [f"{m['name']}: {which}" for m in released for which in kinds], columns=4))

# %% tags=["remove-input"]
for m in released:
    title = f"{m['name']}: {MODEL_TITLES[m['variant']]} on {MUSIC_NAMES[m['dataset']]}, {m['copy']} weights"
    display(Markdown(f"**{title}**: a new piece, then a continuation"),
            play(m["folder"] / "new" / "sample1.wav"), play(m["folder"] / "continued" / "sample1.wav"))

# %% [markdown]
# ## Music from the committed runs
#
# Piano rolls sampled from the music models (time to the right, MIDI note up), and the
# first one played by the simple synthesizer of `srnn.datasets.midi`. The samples start from a
# zero state and a silent first input, so the first steps show the model settling.

# %% tags=["remove-input"] mystnb={"figure": {"caption": "Piano rolls sampled from SRNN, a row per run: its music set, profile and machine."}}
rows = []
for label, record in music:
    rolls = np.load(Path(record["path"]) / "samples" / "rolls.npz")["rolls"][:pieces]
    glue(f"notes_per_step_{record['id']}_{record['profile']}", float(rolls.sum(-1).mean()), display=False)
    rows.append((list(rolls), [f"{label}: sample {i + 1}" for i in range(len(rolls))]))
if rows:
    display(piano_roll_rows(rows))

# %% tags=["remove-input"]
for label, record in music:
    display(Markdown(f"**{label}**, sample 1:"), play(Path(record["path"]) / "samples" / "sample1.wav"))
if not music:
    print("no music run with samples yet: the training pages say how to make one")

# %% [markdown]
# ## Speech
#
# Raw waveforms sampled from the speech models, 16 kHz, back in audio units
# (`SpeechData.waveform` undoes the normalization). The waveforms show each clip's real
# loudness; the players scale every clip to its own peak, on this page as on Baselines.

# %% tags=["remove-input"] mystnb={"figure": {"caption": "Waveforms sampled from SRNN trained on speech."}}
clips, paths = [], []
for label, record in speech:
    for path in sorted((Path(record["path"]) / "samples").glob("*.wav"))[:2]:
        audio, rate = soundfile.read(path, dtype="float32")
        clips.append((f"{label}: {path.stem}", audio, rate))
        paths.append((f"{label}: {path.stem}", path))
if clips:
    display(waveforms([c[1] for c in clips], [c[0] for c in clips], clips[0][2]))

# %% tags=["remove-input"]
for title, path in paths:
    display(Markdown(f"**{title}**:"), play(path))
if not paths:
    print("no speech run with samples yet: the training pages say how to make one")
