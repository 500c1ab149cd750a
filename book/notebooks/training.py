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
# section 1 of its supplementary material). It shows the run with the paper's settings that
# was trained before and committed to `results/`, and, for music, the setting chosen on
# validation with its seeds, with the curves of the bound during training and the test
# bound next to the paper's number.
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
form = "npz"                   # music: npz (the paper's Table 2) or classic
preset_name = "music"          # srnn.config preset
overrides = {}                 # config fields changed
train = False                  # False: show the committed run only
iwae_samples = 100             # K of the IWAE test bound
corpus_env = ""                # variable naming a licensed corpus

# %% tags=["remove-input"]
import os

from IPython.display import Markdown, display
from myst_nb import glue

from srnn.book import pages
from srnn.book.plots import markdown_table, training_curves, validation_curves
from srnn.config import preset
from srnn.datasets import music
from srnn.records import report, tables
from srnn.records.store import load_runs, run_name

known = {"music": music.NAMES, "speech": ("sample", "timit", "blizzard")}
if dataset not in known.get(domain, ()):
    raise ValueError(f"book/pages/{page}.yml: unknown {domain} data set {dataset!r}; choose one of {known.get(domain)}")
name = run_name(domain, dataset, form)      # the smooth+Resq model of the paper's tables

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
    pages.train_run(domain, dataset, preset_name=preset_name, overrides=overrides, profile=profile, device=device,
              runs_dir=runs_dir, results_dir=results_dir, form=form, iwae_samples=iwae_samples, corpus=corpus)

# %% [markdown]
# ## The committed run
#
# Trained with the paper's settings and committed to `results/`: with the original code's
# protocol, or, until that run is committed, the run of this project's first protocol.

# %% tags=["remove-input"]
committed = pages.committed_record(domain, name)
display(Markdown(pages.missing_run(data_name, domain, name, page, corpus_env) if committed is None else pages.run_summary(committed)))

# %% tags=["remove-input"] mystnb={"figure": {"caption": "The committed run with the paper's settings: bound and KL per step during training (training averages use the annealed beta; validation uses beta = 1), the y-axes fitted to where the curves converge."}}
if committed is not None and committed["history"]:      # a missing history is said above, in words
    display(training_curves(committed["history"], title=f"{data_name}, {committed['variant']}, {pages.ran_on(committed)}"))

# %% [markdown]
# ## The setting chosen on validation
#
# The paper's settings are one point of a space it does not search in public. For the
# music sets, the points of one search grid (the paper's settings, batch 8, dropout, both;
# see the Results page) are trained with the paper's seed, and the one with the best
# validation bound is chosen, then rerun with other seeds. The Results page headlines that
# setting; here it stands beside the paper-settings run.

# %% tags=["remove-input"]
found = tables.chosen(load_runs(pages.COMMITTED, profile="paper"), dataset, form) if domain == "music" else None
text, headers, rows = pages.chosen_setting(found, committed)
display(Markdown(text if domain == "music" else "The speech pages have no search of settings: only the paper's."))
markdown_table(headers, rows, empty="no chosen setting yet", name=f"tab-chosen-{page}",
               caption=f"{data_name}: the setting chosen on validation, over its seeds, beside the paper-settings run.")

# %% tags=["remove-input"] mystnb={"figure": {"caption": "Validation ELBO per step of the paper-settings run and of the chosen setting's runs (every seed), zoomed where they converge."}}
shown = ({"paper's settings": committed} if committed else {}) | {f"chosen, seed {r['seed']}": r for r in (found or {}).get("seeds", [])}
if len(shown) > 1:
    display(validation_curves(shown, ["elbo_per_step"], f"{data_name}: validation bound"))

# %% [markdown]
# ## This build's run
#
# A `smoke` build trains a tiny model for a few epochs: its numbers show that the
# pipeline works, not what SRNN can do. A `paper` build writes its run to `results/`,
# so it is the committed run above.

# %% tags=["remove-input"]
fresh = pages.batch_record(domain, name, results_dir)
if fresh is None:
    print(f"none: this {profile!r} build did not train a separate run of this page")
else:
    display(Markdown(pages.run_summary(fresh)))

# %% tags=["remove-input"] mystnb={"figure": {"caption": "This build's run: bound and KL per step during training."}}
if fresh is not None and fresh["history"]:      # a missing history is said above, in words
    display(training_curves(fresh["history"], title=f"{data_name}, {fresh['variant']}, {fresh['profile']}, {pages.ran_on(fresh)}"))
records = [r for r in (committed, fresh) if r is not None]

# %% [markdown]
# ## Test bound

# %% tags=["remove-input"]
display(Markdown(pages.test_bound_note(domain)))

# %% tags=["remove-input"]
for record in records:
    glue(f"elbo_{record['profile']}", report.reported_bound(record), display=False)
markdown_table(*report.bounds_table(records, domain, dataset, form), name=f"tab-test-bound-{page}",
               caption=f"{data_name}: test log-likelihood lower bound (higher is better).")
