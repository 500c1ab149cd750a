# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Performance
#
# What one training update costs (forward pass, backward pass, Adam step) at the paper's
# shapes (the `music` and `timit` presets), and what changes it.
# `python benchmarks/update_time.py` runs every compared path in one process, on the same
# weights, data and noise. The paths take turns, so that load from elsewhere falls on all
# of them alike. Each number is a median. `--record` writes the measurements to
# `results/benchmarks/`, with the code commit, the hardware and the command, and this page
# reads only those records.
#
# What the package does for a GPU is described in the README: no host synchronization per
# update, pinned and non-blocking batch copies, speech batches sent as int16 and
# normalized on the device. `precision=bf16` or `tf32` and `compile=true` are recorded
# options.

# %% tags=["parameters"]
profile = "smoke"
results_root = "results"   # the committed records

# %%
from IPython.display import Markdown, display

from srnn.book import performance
from srnn.book.plots import markdown_table

records = performance.load_benchmarks(results_root)
gpu = [r for r in records if r["hardware"]["device"].startswith("cuda")]
print(f"{len(records)} benchmark record(s) under {results_root}/benchmarks/, {len(gpu)} of them from a GPU")

# %% [markdown]
# ## The update, path by path
#
# Ratios are to the package's plain update in the same process; below 1 is faster. The
# reference is the independent step-by-step implementation that the tests compare the
# model with: it shows what batching everything but the z-chain buys. "fp32 products on
# oneDNN" sets torch's fp32 matmul precision to "medium", which lets torch send a CPU's
# matrix products to oneDNN instead of its BLAS (MKL in the PyPI wheels). `compile=true`
# runs each step of the z-chain through `torch.compile`. "DVAE's SRNN" is another
# implementation, timed for the goal below.

# %% tags=["remove-input"]
markdown_table(*performance.updates_table(records), empty="no benchmark record yet",
               caption="One training update, by path: the package's time and the others' as ratios to it "
                       "(medians, measured side by side in one process).", name="tab-perf-updates")

# %% [markdown]
# ## The products on an AMD CPU
#
# Intel's MKL checks the CPU's vendor and can take slower code paths on AMD processors. A
# library that answers that check, preloaded into the process, makes MKL take its Intel
# path. A preload acts from a process's start, so this comparison is between two processes
# run one after the other, on the same machine, threads and commit. To try it:
#
#     mkdir -p runs && echo 'int mkl_serv_intel_cpu_true(void) { return 1; }' > runs/mkl_intel_path.c
#     cc -shared -fPIC -O2 -o runs/libmkl_intel_path.so runs/mkl_intel_path.c
#     LD_PRELOAD=$PWD/runs/libmkl_intel_path.so python benchmarks/update_time.py --onednn
#
# Two processes run one after the other do not see the same load. On our 2-core virtual
# machine, the two-thread updates moved noticeably from one run to the next, so read these
# ratios as rough. Measure on your own machine before you keep the preload. Every run records its engine under
# `hardware.products`: the BLAS, the fp32 matmul precision and any preloaded library. A
# run made with another engine agrees with ours to rounding, not bit for bit.

# %% tags=["remove-input"]
markdown_table(*performance.preload_table(records), empty="no pair of records with and without a preload",
               caption="The package's update with MKL's vendor check answered by a preloaded library, against "
                       "the same machine without it (two processes, one after the other).", name="tab-perf-preload")

# %% [markdown]
# The next table times one product alone: the largest of a music update, by each engine.
# Its last column says whether an engine kept fp32 accuracy. fp32 rounding gives errors
# near 1e-7. bf16, which oneDNN uses for "medium" precision on CPUs with AMX units, would
# give errors near 1e-3.

# %% tags=["remove-input"]
markdown_table(*performance.product_table(records), empty="no record timed the products alone",
               caption="One fp32 matrix product by each engine: GFLOP/s (median) and the largest error against "
                       "float64, relative to the largest value.", name="tab-perf-product")

# %% [markdown]
# ## Against the goal
#
# Issue 12 set a goal for the CPU update: at least the speed of another SRNN implementation,
# the DVAE project's (Bie et al.), measured on the same machine in the same process.
# `--dvae PATH` times it from a clone of that project, which is not part of this one
# (`benchmarks/dvae_srnn.py` says how it is sized). Its model is not the paper's: LSTMs
# where SRNN has GRUs, one hidden layer shared by each head's mean and log-variance. At the
# sizes set there, an update of it does about as much arithmetic as the package's (each
# line below gives both counts), so the comparison is one of execution. Each line compares
# the two in one record, on the same engine.
#
# Matrix products take most of an update (`--profile` shows where its time goes). PyTorch
# runs an LSTM on the CPU as one fused oneDNN kernel, forward and backward. It has no such
# kernel for a GRU, so the package's GRUs run step by step on torch's BLAS.
#
# One saving was measured and then taken out. Since $u_t = x_{t-1}$, $\phi(u)$ is $\phi(x)$
# one step later, so $\phi$ could run over $x$ and the window's first $u$ only. The records
# made at commit 213e520 include it: against the earlier commit, the update is 5-10% faster.
# But it changes the products' rounding, and then the committed runs no longer reproduce bit
# for bit (`scripts/records_hold.py`), so the package computes $\phi$ over both. We also tried
# writing the GRU recurrence and the z-chain's backward pass by hand, with every weight's
# gradient as one product over all steps. On our machine that made no difference worth the
# code. The time is in the products themselves.

# %%
display(Markdown("\n".join(performance.goal_lines(records))
                 or "No benchmark record timed the DVAE implementation yet."))

# %% [markdown]
# ## On a GPU
#
# On a GPU box, this command times the same paths, the K=100 bound and each music page's
# training time under the `paper` profile:
#
#     python benchmarks/update_time.py --device cuda --compile --iwae --estimate jsb nottingham muse piano \
#         --record results/benchmarks/gpu.json
#
# The record then shows up in the tables above.

# %%
display(Markdown("No record from a GPU yet: this project has not been lent one to measure on."
                 if not gpu else f"{len(gpu)} record(s) from a GPU, in the tables above."))

# %% [markdown]
# ## The records

# %%
display(Markdown("\n".join(performance.provenance_lines(records)) or "No benchmark record yet."))
