#!/usr/bin/env bash
# Every run behind results/music/: one line per run, each the one command that reproduces it
# (same seed, same machine type). The records name the hardware they ran on.
#   bash experiments/music.sh                 # all runs, one after another
#   JOBS=18 bash experiments/music.sh         # all at once (what ran on one GPU)
#   bash experiments/music.sh --list          # print the commands only
# The CPU runs in results/ ran two at a time with OMP_NUM_THREADS=1 (their records say
# torch_threads: 1); set it too to get the same numbers on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}

commands() {
  for set in jsb nottingham muse piano; do          # Table 2: the authors' arrays and the classic rolls
    for form in npz classic; do
      echo "music --dataset $set --form $form"
    done
  done
  for set in jsb nottingham; do                     # the four SRNN variants on music
    for variant in smooth filt+Resq filt; do
      echo "music --dataset $set --variant $variant"
    done
  done
  # KL annealing ablations (the paper's schedule is 0.2 -> 1 over 20 epochs)
  echo "music --dataset jsb --name kl-none --set kl_schedule=constant kl_start=1.0"
  echo "music --dataset jsb --name kl-from0 --set kl_start=0.0"
  echo "music --dataset jsb --name kl-fast --set kl_epochs=5"
  echo "music --dataset jsb --name kl-slow --set kl_epochs=40"
  # the gap to Table 2: seed-to-seed spread, and two details of the original Theano/Lasagne code
  for seed in 124 125 126; do
    echo "music --dataset jsb --set seed=$seed --name seed$seed"
  done
  echo "music --dataset jsb --name adam-lasagne --set adam_eps_style=lasagne"
  echo "music --dataset jsb --name gru-nobias --set gru_hidden_bias=false"
  echo "music --dataset jsb --name lr-decay21 --set lr_decay_start=21"    # the original's first 21 epochs at full rate
  echo "music --dataset jsb --name original-code --set adam_eps_style=lasagne gru_hidden_bias=false lr_decay_start=21"
  echo "music --dataset jsb --name adam-eps1e-8 --set adam_eps=1e-8"   # how much epsilon matters at all
  echo "music --dataset jsb --name adam-eps1e-8-seed124 --set adam_eps=1e-8 seed=124"
  # beyond the paper's settings: faster or longer learning (compared on validation)
  echo "music --dataset jsb --name lr3e-3 --set lr=0.003"
  echo "music --dataset jsb --name decay-from31 --set lr_decay_start=30"
  echo "music --dataset jsb --name batch8 --set batch_size=8"
  echo "music --dataset jsb --name batch4 --set batch_size=4"
  echo "music --dataset jsb --name batch8-eps1e-8 --set batch_size=8 adam_eps=1e-8"
  for seed in 124 125; do                           # the setting chosen on validation, other seeds
    echo "music --dataset jsb --name batch4-seed$seed --set batch_size=4 seed=$seed"
  done
  echo "music --dataset piano --name batch8 --set batch_size=8"     # smaller batches on two more sets
  echo "music --dataset nottingham --name batch8 --set batch_size=8"
  # the main JSB run again on a CPU (the main run is a GPU record), to compare CPU runs with
  echo "music --dataset jsb --name cpu"
}

if [[ "${1:-}" == "--list" ]]; then
  commands | sed "s/^/$PY -m srnn.experiment /"
  exit 0
fi
mkdir -p runs/logs
commands | xargs -P "${JOBS:-1}" -I{} sh -c \
  'log="runs/logs/$(echo "{}" | tr -c "A-Za-z0-9+=-" "_").log"; '"$PY"' -m srnn.experiment {} > "$log" 2>&1 && echo "done: {}" || echo "FAILED: {} (see $log)"'
