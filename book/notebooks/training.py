# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Training on one data set
#
# This page is executed once per data set (section 5 of {cite:t}`fraccaro2016srnn` and
# section 1 of its supplementary material). It trains SRNN with the settings below, or
# shows a run that was trained before and committed to `results/`, with the curves of the
# bound during training and the test bound next to the paper's number.
#
# The bound is computed per time step: for music a step is one frame of the piano roll,
# for speech one frame of 200 audio samples. Music reports the mean over test pieces of
# each piece's bound divided by its length (the estimator of the authors' code) and also
# the bound summed over all test frames divided by their number; speech reports the bound
# per test sequence (a 0.5 s piece for Blizzard and the embedded sample, a whole utterance
# for TIMIT).

# %% tags=["parameters"]
profile = "smoke"
page = "training_jsb"          # the runner's name of this page
device = "auto"
runs_dir = "runs/smoke"        # checkpoints
results_dir = "results"        # where records go
data_name = "JSB Chorales"     # the data set in the text
domain = "music"               # or "speech"
dataset = "jsb"                # jsb, nottingham, muse, piano; sample, timit, blizzard
form = "npz"                   # music: npz (Table 2) or classic
preset_name = "music"          # srnn.config preset
overrides = {}                 # config fields changed
train = False                  # False: show the committed run only
iwae_samples = 100             # K of the IWAE test bound
corpus_env = ""                # variable naming a licensed corpus

# %%
import os

from IPython.display import Markdown, display
from myst_nb import glue

from srnn.book.pages import batch_record, committed_record, missing_run, run_summary, train_run
from srnn.book.plots import markdown_table, training_curves
from srnn.config import preset
from srnn.datasets import music
from srnn.records import report
from srnn.records.store import run_name

known = {"music": music.NAMES, "speech": ("sample", "timit", "blizzard")}
if dataset not in known.get(domain, ()):
    raise ValueError(f"book/pages/{page}.yml: unknown {domain} data set {dataset!r}; choose one of {known.get(domain)}")
name = run_name(domain, dataset, form)      # the smooth+Resq model of the paper's tables
print(f"{data_name}: run {name!r}, preset {preset_name!r}, profile {profile!r}, overrides {overrides}")


# %% [markdown]
# ## Settings
#
# The paper's settings are the presets `music`, `timit` and `blizzard` of `srnn.config`
# (the `paper` profile); the `smoke` profile shrinks them so that the whole book runs on
# a CPU in minutes. The differences from the preset used here:

# %% tags=["remove-input"]
base = preset(preset_name)
changed = [(k, getattr(base, k), v) for k, v in overrides.items()]
markdown_table(["field", "preset", "this page"], changed, empty="(none)",
               caption=f"Config fields that differ from the {preset_name!r} preset.", name=f"tab-overrides-{page}")

# %% [markdown]
# ## This page's run

# %% tags=["hide-input"]
corpus = os.environ.get(corpus_env, "") if corpus_env else ""
if domain == "speech" and dataset != "sample" and train and not corpus:
    print(f"{data_name} is not available on this machine: set {corpus_env}=/path/to/the/corpus "
          f"and run this page again. Nothing was trained.")
    train = False
if train:
    train_run(domain, dataset, preset_name=preset_name, overrides=overrides, profile=profile, device=device,
              runs_dir=runs_dir, results_dir=results_dir, form=form, iwae_samples=iwae_samples, corpus=corpus)

# %% [markdown]
# ## The committed run
#
# Trained with the paper's settings and committed to `results/`: with the original code's
# protocol, or, until that run is committed, the run of this project's first protocol.

# %%
committed = committed_record(domain, name)
display(Markdown(missing_run(data_name, domain, name, page, corpus_env) if committed is None else run_summary(committed)))

# %% mystnb={"figure": {"caption": "The committed run: bound and KL per step during training (training averages use the annealed beta; validation uses beta = 1)."}}
if committed is not None and committed["history"]:      # a missing history is said above, in words
    display(training_curves(committed["history"], title=f"{data_name}, {committed['variant']}, {committed['profile']}"))

# %% [markdown]
# ## This build's run
#
# A `smoke` build trains a tiny model for a few epochs: its numbers show that the
# pipeline works, not what SRNN can do. A `paper` build writes its run to `results/`,
# so it is the committed run above.

# %%
fresh = batch_record(domain, name, results_dir)
if fresh is None:
    print(f"none: this {profile!r} build did not train a separate run of this page")
else:
    display(Markdown(run_summary(fresh)))

# %% mystnb={"figure": {"caption": "This build's run: bound and KL per step during training."}}
if fresh is not None and fresh["history"]:      # a missing history is said above, in words
    display(training_curves(fresh["history"], title=f"{data_name}, {fresh['variant']}, {fresh['profile']}"))
records = [r for r in (committed, fresh) if r is not None]

# %% [markdown]
# ## Test bound
#
# For speech, the test scores each sequence in one pass with its first frame only an
# input, as the original code's TIMIT test; the column *windows* is the second estimator,
# 40-frame windows that carry the state and score every frame, which is not comparable
# with Table 1. The table also divides the bound per step by the 200 samples of a frame:
# nats per sample on the normalized scale the model sees, and bits per sample of the raw
# waveform (floats in $[-1, 1]$, so $\log p_{\text{raw}} = \log p_{\text{norm}} - \log \sigma$),
# the unit of later benchmarks {cite:p}`havtorn2022`.

# %% tags=["remove-input"]
for record in records:
    glue(f"elbo_{record['profile']}", report.reported_bound(record), display=False)
markdown_table(*report.bounds_table(records, domain, dataset, form), name=f"tab-test-bound-{page}",
               caption=f"{data_name}: test log-likelihood lower bound (higher is better).")
