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
# shapes (the `music` and `timit` presets), and what changes it. Every number on this page
# comes from a record that `python benchmarks/update_time.py --record` wrote to
# `results/benchmarks/`. That command times every compared path in one process, on the
# same weights, data and noise; the paths take turns, so that load from elsewhere falls on
# all of them alike, and each number is a median.
#
# The first section says where, when and at which commit the records were measured.
# Read it first: a record times the code of its commit, which need not be the package's.

# %% tags=["parameters"]
profile = "smoke"
results_root = "results"   # the committed records

# %% tags=["remove-input"]
from IPython.display import Markdown, display

from srnn.book import performance
from srnn.book.plots import markdown_table

records = performance.load_benchmarks(results_root)
gpu = [r for r in records if r["hardware"]["device"].startswith("cuda")]

# %% [markdown]
# ## What was measured, where

# %% tags=["remove-input"]
display(Markdown("\n".join(performance.measured_lines(records)) or "No benchmark record yet."))

# %% [markdown]
# ## The update, path by path
#
# The column *package* is the plain update of the record's commit, in milliseconds. Each
# other column is that path's time divided by it, measured in the same process: 0.90x means
# 10% faster, 1.10x 10% slower; every time is a median. *reference* is the independent
# step-by-step implementation that the tests compare the model with: it shows what batching
# everything but the z-chain buys. *oneDNN* sets torch's fp32 matmul precision to "medium",
# which lets torch send a CPU's matrix products to oneDNN instead of its BLAS (MKL in the
# PyPI wheels). *compiled* runs each step of the z-chain through `torch.compile`
# (`compile=true`). *DVAE* is another implementation of SRNN, timed for the goal below.
# *earlier* is the package at the earlier commit named above the table. *MKL* says whether
# MKL was made to take its Intel code path (next section).

# %% tags=["remove-input"]
display(Markdown(performance.shapes_line(records)))
markdown_table(*performance.updates_table(records), empty="no benchmark record yet",
               caption="One training update by each path: the package's time, the others' as ratios to it.",
               name="tab-perf-updates")

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
# Two processes run one after the other do not see the same load. On the 2-core virtual
# machine of these records, the two-thread updates moved noticeably from one run to the
# next, so read these ratios as rough. Measure on your own machine before you keep the preload. Every run records its engine under
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
# The goal for the CPU update is at least the speed of another SRNN implementation, the
# DVAE project's (Bie et al.), measured on the same machine in the same process.
# `--dvae PATH` times it from a clone of that project, which is not part of this one
# (`benchmarks/dvae_srnn.py` says how it is sized). Its model is not the paper's: LSTMs
# where SRNN has GRUs, one hidden layer shared by each head's mean and log-variance. At the
# sizes set there, an update of it does about as much arithmetic as the package's (each
# line below gives both counts), so the comparison is one of execution.
#
# Matrix products take most of an update (`--profile` shows where its time goes). PyTorch
# runs an LSTM on the CPU as one fused oneDNN kernel, forward and backward. It has no such
# kernel for a GRU, so the package's GRUs run step by step on torch's BLAS.
#
# Writing the GRU recurrence and the z-chain's backward pass by hand, with every weight's
# gradient as one product over all steps, was also tried; on the same machine it made no
# difference worth the code.

# %% tags=["remove-input"]
display(Markdown("\n".join(performance.goal_lines(records))
                 or "No benchmark record timed the DVAE implementation yet."))

# %% [markdown]
# ## On a GPU
#
# This command times the same paths on a GPU, the K=100 bound and each music page's
# training time under the `paper` profile, and records them:
#
#     python benchmarks/update_time.py --device cuda --compile --iwae --estimate jsb nottingham muse piano \
#         --record results/benchmarks/gpu.json
#
# A committed record then shows up in the tables above.

# %% tags=["remove-input"]
display(Markdown("Every record on this page was measured on a CPU: none was made on a GPU."
                 if not gpu else f"{len(gpu)} of the records were measured on a GPU; the tables above show them."))

# %% [markdown]
# ## The records
#
# Each record's machine, threads, torch, commit, start, duration and command.

# %% tags=["remove-input"]
display(Markdown("\n".join(performance.provenance_lines(records)) or "No benchmark record yet."))
