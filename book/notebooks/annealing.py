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
device = "cpu"
runs_dir = "runs/smoke"
results_dir = "results"
dataset = "jsb"                 # a music set (the ablation runs on the authors' arrays)
preset_name = "music"
overrides = {}                  # applied to every schedule
schedules = {                   # name -> config fields of the KL temperature
    "none": {"kl_schedule": "constant", "kl_start": 1.0},
    "paper": {},
    "code": {"kl_start": 0.0},
    "fast": {"kl_epochs": 5},
    "slow": {"kl_epochs": 40},
}
train = True
threshold = 0.01                # KL per step (nats) above which a latent dimension is active

# %%
import torch
from IPython.display import Markdown, display
from myst_nb import glue

from srnn import music
from srnn.checkpoint import load_model
from srnn.config import preset
from srnn.pages import find_record, missing_run, run_id, train_run
from srnn.plots import kl_per_dimension, markdown_table, training_curves


def describe(cfg):
    if cfg.kl_schedule == "constant":
        return f"beta = {cfg.kl_start:g} throughout"
    ramp = f"over {cfg.kl_epochs} epochs" if cfg.kl_schedule == "linear_epochs" else f"+{cfg.kl_increment:g} per update"
    return f"beta {cfg.kl_start:g} -> 1, {ramp}"


configs = {name: preset(preset_name, **overrides, **fields) for name, fields in schedules.items()}
markdown_table(["run", "KL temperature"], [(name, describe(cfg)) for name, cfg in configs.items()],
               caption="The annealing schedules compared on this page.", name="tab-annealing-schedules")

# %% tags=["hide-input"]
records = {}
for name in schedules:
    run_name = f"anneal-{name}"
    if train:
        records[name] = train_run("music", dataset, preset_name=preset_name, overrides={**overrides, **schedules[name]},
                                  profile=profile, device=device, runs_dir=runs_dir, results_dir=results_dir,
                                  name=run_name)
    else:
        records[name] = find_record("music", run_id("music", dataset, name=run_name), results_dir)
missing = [name for name, r in records.items() if r is None]
for name in missing:
    display(Markdown(missing_run(f"the {name!r} schedule", "music", run_id("music", dataset, name=f"anneal-{name}"), page)))
records = {name: r for name, r in records.items() if r is not None}
print(f"{len(records)} of {len(schedules)} schedules have a run ({profile} profile, records in {results_dir})")

# %% [markdown]
# ## The bound and the KL term during training
#
# Validation numbers use $\beta = 1$, so they are the true bound whatever the schedule.

# %% mystnb={"figure": {"caption": "Validation bound (left) and KL term (right) per step for each schedule.", "name": "fig-annealing-curves"}}
import matplotlib.pyplot as plt

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
for name, r in records.items():
    points = [(h["epoch"], h["valid_elbo_per_step"], h["valid_kl_per_step"]) for h in r["history"] if "valid_elbo_per_step" in h]
    epochs, elbo, kl = zip(*points)
    left.plot(epochs, elbo, "o-", ms=3, label=name)
    right.plot(epochs, kl, "o-", ms=3, label=name)
left.set(xlabel="epoch", ylabel="validation ELBO per step")
right.set(xlabel="epoch", ylabel="validation KL per step")
left.legend()
fig.tight_layout()
plt.close(fig)
fig

# %% [markdown]
# ## Which latent dimensions are used
#
# The KL term of a dimension measures how much information about the data its posterior
# carries. A dimension whose KL stays near zero is inactive: the posterior ignores the
# data there. The average over the test pieces is computed from each run's best
# checkpoint, so it needs the run folders under `runs/`; committed records alone do not
# have it.

# %%
@torch.no_grad()
def kl_by_dimension(model, batches):
    """Mean KL per step of every latent dimension, the state carried as in evaluation."""
    total, steps, state = 0.0, 0.0, None
    for batch in batches:
        out = model(batch.x, batch.u, batch.mask, None if batch.reset else state)
        state, total, steps = out.state, total + out.kl_dim.sum((0, 1)), steps + batch.mask.sum()
    return (total / steps).numpy()


test = music.dataset(dataset, "npz").test
kl_dims = {}
for name, r in records.items():
    checkpoint = f"{runs_dir}/{r['id']}/best.pt"
    try:
        kl_dims[name] = kl_by_dimension(load_model(checkpoint), test)
    except FileNotFoundError:
        print(f"{name}: no checkpoint at {checkpoint}")
for name, kl in kl_dims.items():
    glue(f"active_{name}", int((kl > threshold).sum()), display=False)

# %% mystnb={"figure": {"caption": "Average test KL per step of each latent dimension, sorted, per schedule; dimensions above the threshold are active.", "name": "fig-annealing-kl-dims"}}
if kl_dims:
    display(kl_per_dimension(kl_dims, threshold))
else:
    print("no checkpoints here: KL per dimension not shown")

# %% tags=["remove-input"]
rows = []
for name, r in records.items():
    t, kl = r["test"], kl_dims.get(name)
    active = "-" if kl is None else f"{int((kl > threshold).sum())} / {len(kl)}"
    rows.append((name, describe(configs[name]), f"{t['elbo_per_step_seq']:.3f}", f"{t['kl_per_step']:.3f}", active,
                 "-" if kl is None else ("collapsed" if (kl <= threshold).all() else "no")))
    glue(f"elbo_{name}", t["elbo_per_step_seq"], display=False)
markdown_table(["run", "schedule", "test ELBO / step", "test KL / step", "active units", "posterior collapse"],
               rows or [("no run yet", "-", "-", "-", "-", "-")],
               caption="Test bound and latent usage per annealing schedule.", name="tab-annealing")

# %% [markdown]
# With the paper's settings the bound of every schedule can be compared on the results
# of a full run; in a `smoke` build the models are tiny and train for a few epochs, so
# the differences between schedules show the mechanics, not the paper's conclusion.
