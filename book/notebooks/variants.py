# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Smoothing, filtering and Resq
#
# Table 1 of {cite:t}`fraccaro2016srnn` compares four inference networks on speech:
# *smoothing* (a backward GRU gives $q$ the future $x_{t:T}$) or *filtering* (a dense
# layer on the present step only), each with or without *Resq*, the posterior mean
# learned as a correction of the prior mean, $\mu^{(q)}_t = \mu^{(p)}_t + \Delta\mu_t$.
# In the paper, smoothing beats filtering and Resq helps smoothing. This page trains the
# four variants with otherwise identical settings and compares their bounds.

# %% tags=["parameters"]
profile = "smoke"
page = "variants"
device = "cpu"
runs_dir = "runs/smoke"
results_dir = "results"
domain = "music"
dataset = "jsb"
form = "npz"
preset_name = "music"
overrides = {}          # applied to every variant
train = True
iwae_samples = 100

# %%
from IPython.display import Markdown, display
from myst_nb import glue

from srnn.experiment import VARIANTS
from srnn.pages import run_groups
from srnn.plots import markdown_table, validation_curves

specs = [{"label": variant, "variant": variant, "overrides": overrides} for variant in VARIANTS]
groups, notes = run_groups(specs, domain=domain, dataset=dataset, form=form, page=page, train=train,
                           results_dir=results_dir, preset_name=preset_name, profile=profile, device=device,
                           runs_dir=runs_dir, iwae_samples=iwae_samples)
for note in notes:
    display(Markdown(note))
print({group: sorted(runs) for group, runs in groups.items()})

# %% [markdown]
# ## Validation bound during training
#
# The committed runs (the paper's music settings) first; a `smoke` build adds its own.

# %% mystnb={"figure": {"caption": "Validation ELBO per step of the four inference networks during training."}}
for group, runs in groups.items():
    if runs:
        display(validation_curves(runs, ["elbo_per_step"], f"{group} runs"))

# %% [markdown]
# ## Test bound

# %% tags=["remove-input"]
key = "elbo_per_step_seq" if domain == "music" else "elbo_per_seq"
rows = []
for group, runs in groups.items():
    for variant, r in runs.items():
        t = r["test"]
        rows.append((group, f"SRNN ({variant})", f"{t[key]:.3f}", f"{t['kl_per_step']:.3f}", r["epochs"]))
        glue(f"elbo_{group}_{variant}", t[key], display=False)
unit = "step (mean over pieces)" if domain == "music" else "sequence"
markdown_table(["runs", "model", f"test ELBO per {unit}", "test KL per step", "epochs"],
               rows or [("none", "no run yet", "-", "-", "-")],
               caption=f"The four SRNN variants on {dataset}.", name="tab-variants")

# %% [markdown]
# The paper's ordering on speech is smooth+Resq > smooth > filt+Resq and filt. The
# committed runs test it on music with the paper's music settings; a `smoke` build trains
# tiny models for a few epochs, so its ordering is noise.
