# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # KL annealing
#
# The supplementary material of {cite:t}`fraccaro2016srnn` says that it was "fundamental
# to gradually introduce the KL term": the bound is trained as
# $\sum_t \log p(x_t \mid z_t, d_t) - \beta\,\mathrm{KL}_t$ with a temperature $\beta$
# that grows linearly from 0.2 to 1 {cite:p}`bowman2016,sonderby2016,raiko2007`. With
# $\beta = 1$ from the start, the cheapest way to lower the KL term is to make the
# posterior equal to the prior: the latent units carry no information about the data and
# the model falls back on its deterministic path (posterior collapse). This page trains
# the same model with several schedules and compares the bound, the KL term, and the KL
# of each latent dimension.

# %% tags=["parameters"]
profile = "smoke"
page = "annealing"
device = "auto"
runs_dir = "runs/smoke"
results_dir = "results"
dataset = "jsb"                 # a music set, the authors' arrays
preset_name = "music"
overrides = {}                  # applied to every schedule
schedules = [                   # label, run name suffix, config fields of the KL temperature
    ["none", "kl-none", {"kl_schedule": "constant", "kl_start": 1.0}],
    ["paper", "", {}],          # the training page's run
    ["code", "kl-from0", {"kl_start": 0.0}],
    ["fast", "kl-fast", {"kl_epochs": 5}],
    ["slow", "kl-slow", {"kl_epochs": 40}],
]
train = True
iwae_samples = 100
threshold = 0.01                # KL per step (nats) above which a latent dimension is active

# %% tags=["remove-input"]
import numpy as np
from IPython.display import Markdown, display
from myst_nb import glue

from srnn.book.pages import FIRST_GROUP, ran_on, run_groups
from srnn.book.plots import kl_per_dimension, markdown_table, validation_curves
from srnn.config import Config, preset


def describe(cfg):
    if cfg.kl_schedule == "constant":
        return f"beta = {cfg.kl_start:g} throughout"
    epochs = f"{cfg.kl_epochs} epoch" + "s" * (cfg.kl_epochs != 1)
    ramp = f"over {epochs}" if cfg.kl_schedule == "linear_epochs" else f"+{cfg.kl_increment:g} per update"
    return f"beta {cfg.kl_start:g} -> 1, {ramp}"


def curves(group):
    """The validation bound and KL of one group of runs, with the devices they trained on."""
    if runs := groups.get(group):
        where = ", ".join(sorted({ran_on(r) for r in runs.values()}))
        display(validation_curves(runs, ["elbo_per_step", "kl_per_step"], f"{group} runs ({where})"))


configs = {label: preset(preset_name, **overrides, **fields) for label, _, fields in schedules}
markdown_table(["schedule", "KL temperature"], [(label, describe(cfg)) for label, cfg in configs.items()],
               caption=f"The annealing schedules this page trains (profile {profile}).", name="tab-annealing-schedules")

# %% tags=["remove-input"]
specs = [{"label": label, "name": name, "overrides": {**overrides, **fields}} for label, name, fields in schedules]
groups, notes = run_groups(specs, domain="music", dataset=dataset, page=page, train=train, results_dir=results_dir,
                           preset_name=preset_name, profile=profile, device=device, runs_dir=runs_dir,
                           iwae_samples=iwae_samples)
for note in notes:
    display(Markdown(note))

# %% [markdown]
# ## The bound and the KL term during training
#
# Validation numbers use $\beta = 1$, so they are the true bound whatever the schedule.
# The committed runs come first; a `smoke` build adds its own tiny runs. Each panel's title
# names the device its runs trained on: one seed follows different paths on a CPU and on a
# GPU, so a run of the same label on the Results page, made on another device, reads
# another number.

# %% mystnb={"figure": {"caption": "Validation bound (left) and KL term (right) per step for each schedule: the committed runs of the original code's protocol."}}
curves("committed")

# %% mystnb={"figure": {"caption": "Validation bound (left) and KL term (right) per step for each schedule: the committed runs of this project's first protocol, shown while some schedule has no run of the original code's protocol."}}
curves(FIRST_GROUP)

# %% mystnb={"figure": {"caption": "Validation bound (left) and KL term (right) per step for each schedule: the runs this build trained itself (a smoke build: tiny models, a few epochs)."}}
curves(profile)

# %% [markdown]
# ## Which latent dimensions are used
#
# The KL term of a dimension measures how much information about the data its posterior
# carries; a dimension whose KL stays near zero is inactive, and a model with no active
# dimension has collapsed onto its deterministic path. Each record holds the average over
# the test pieces of every dimension's KL per step (`kl_per_dim`), computed with the
# best checkpoint when the run was tested.

# %% tags=["remove-input"]
kl_dims = {}
for group, runs in groups.items():
    for label, r in runs.items():
        if "kl_per_dim" in r["test"]:
            kl_dims[f"{label} ({group})"] = kl = np.array(r["test"]["kl_per_dim"])
            glue(f"active_{group}_{label}", int((kl > threshold).sum()), display=False)
unrecorded = [f"{label} ({group})" for group, runs in groups.items() for label, r in runs.items()
              if "kl_per_dim" not in r["test"]]
if unrecorded:
    display(Markdown("Recorded before `kl_per_dim` existed, so not shown: " + ", ".join(unrecorded) + "."))

# %% mystnb={"figure": {"caption": "Average test KL per step of each latent dimension, sorted, per schedule; dimensions above the threshold are active.", "name": "fig-annealing-kl-dims"}}
if kl_dims:
    display(kl_per_dimension(kl_dims, threshold))
else:
    print("no record here holds the KL per dimension")

# %% tags=["remove-input"]
rows = []
for group, runs in groups.items():
    for label, r in runs.items():
        t = r["test"]
        kl = np.array(t["kl_per_dim"]) if "kl_per_dim" in t else None
        active = "-" if kl is None else f"{int((kl > threshold).sum())} / {len(kl)}"
        collapse = "-" if kl is None else ("yes" if (kl <= threshold).all() else "no")
        rows.append((group, label, describe(Config.from_dict(r["config"])), ran_on(r), f"{t['elbo_per_step_seq']:.3f}",
                     f"{t['kl_per_step']:.3f}", active, collapse))
        glue(f"elbo_{group}_{label}", t["elbo_per_step_seq"], display=False)
markdown_table(["runs", "schedule", "KL temperature", "device", "test ELBO / step", "test KL / step", "active units",
                "collapsed"], rows or [("none", "-", "-", "-", "-", "-", "-", "-")],
               caption="Test bound and latent usage per annealing schedule.", name="tab-annealing")

# %% [markdown]
# The committed runs use the paper's music settings, so their differences are the
# ablation's result. A `smoke` build trains tiny models for a few epochs; its rows only
# show that the mechanics work.
