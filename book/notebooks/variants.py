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
iwae_samples = 1

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown, display
from myst_nb import glue

from srnn.experiment import VARIANTS
from srnn.pages import find_record, missing_run, run_id, train_run
from srnn.plots import markdown_table

records = {}
for variant in VARIANTS:
    if train:
        records[variant] = train_run(domain, dataset, preset_name=preset_name, overrides=overrides, profile=profile,
                                     device=device, runs_dir=runs_dir, results_dir=results_dir, form=form,
                                     variant=variant, name="variants", iwae_samples=iwae_samples)
    else:
        records[variant] = find_record(domain, run_id(domain, dataset, form, variant, "variants"), results_dir)
        if records[variant] is None:
            display(Markdown(missing_run(f"SRNN ({variant})", domain, run_id(domain, dataset, form, variant, "variants"), page)))
records = {v: r for v, r in records.items() if r is not None}
print(f"{len(records)} of {len(VARIANTS)} variants have a run ({profile} profile, records in {results_dir})")

# %% [markdown]
# ## Validation bound during training

# %% mystnb={"figure": {"caption": "Validation ELBO per step of the four inference networks during training.", "name": "fig-variants-curves"}}
fig, ax = plt.subplots(figsize=(6.5, 3.4))
for variant, r in records.items():
    points = [(h["epoch"], h["valid_elbo_per_step"]) for h in r["history"] if "valid_elbo_per_step" in h]
    ax.plot(*zip(*points), "o-", ms=3, label=variant)
ax.set(xlabel="epoch", ylabel="validation ELBO per step")
ax.legend()
fig.tight_layout()
plt.close(fig)
fig

# %% [markdown]
# ## Test bound

# %% tags=["remove-input"]
key = "elbo_per_step_seq" if domain == "music" else "elbo_per_seq"
rows = []
for variant, r in records.items():
    t = r["test"]
    rows.append((f"SRNN ({variant})", f"{t[key]:.3f}", f"{t['kl_per_step']:.3f}", r["epochs"]))
    glue(f"elbo_{variant}", t[key], display=False)
unit = "step (mean over pieces)" if domain == "music" else "sequence"
markdown_table(["model", f"test ELBO per {unit}", "test KL per step", "epochs"],
               rows or [("no run yet", "-", "-", "-")],
               caption=f"The four SRNN variants on {dataset} (profile {profile}).", name="tab-variants")

# %% [markdown]
# The paper's ordering on speech is smooth+Resq > smooth > filt+Resq and filt. A
# `smoke` build trains tiny models for a few epochs on music, so its ordering is noise;
# the `paper` profile trains each variant with the paper's music settings.
