#!/usr/bin/env bash
# Every run behind results/music/: one line per run, each the one command that reproduces it
# (same seed, same machine type). The records name the hardware they ran on.
#   bash experiments/music.sh                 # all runs, one after another
#   JOBS=2 bash experiments/music.sh          # two at a time (on a GPU box: one per GPU by default)
#   bash experiments/music.sh --list          # print the commands only
# The CPU runs in results/ ran two at a time with OMP_NUM_THREADS=1 (their records say
# torch_threads: 1); set it too to get the same numbers on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}

commands() {
  # The search protocol (srnn/records/grid.py): the same grid of settings for every set, for
  # SRNN and VRNN, with the paper's seed; then the setting chosen on validation with seeds 124
  # and 125, for every set and model whose grid has run.
  "$PY" -m srnn.records.grid --results "${RESULTS:-results}"
  # Settings tried before the protocol was written down, where SRNN first fell short of the
  # paper (they stay on the Results page, but are not candidates)
  echo "music --dataset jsb --name batch4 --set batch_size=4"
  echo "music --dataset nottingham --name drop-dz0.5 --set drop_d=0.5 drop_z=0.5"
  echo "music --dataset nottingham --name drop-all --set drop_phi_u=0.25 drop_phi_x=0.25 drop_d=0.25 drop_z=0.25"
  # the other baselines, with the paper's settings and SRNN's protocol: VRNN-I (standard normal prior), RNN
  echo "music --dataset jsb --preset vrnn_music --set vrnn_prior=standard"
  for set in jsb nottingham muse piano; do
    echo "music --dataset $set --preset rnn_music"
  done
  legacy
}

# Runs made with this project's first protocol, before the original code's protocol became the
# default (ids ending in -legacy): each --set after the run's own settings restores a departure
# from the original code.
legacy() {
  echo "music --dataset jsb --form classic --name legacy --set init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset jsb --variant filt --name legacy --set init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset jsb --variant filt+Resq --name legacy --set init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset jsb --variant smooth --name legacy --set init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset jsb --name adam-eps1e-8-legacy --set adam_eps=1e-8 init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset jsb --name adam-eps1e-8-seed124-legacy --set adam_eps=1e-8 seed=124 init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset jsb --name adam-lasagne-legacy --set adam_eps_style=lasagne init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset jsb --name batch4-legacy --set batch_size=4 init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset jsb --name batch4-seed124-legacy --set batch_size=4 seed=124 init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset jsb --name batch4-seed125-legacy --set batch_size=4 seed=125 init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset jsb --name batch8-eps1e-8-legacy --set batch_size=8 adam_eps=1e-8 init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset jsb --name batch8-legacy --set batch_size=8 init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset jsb --name cpu-legacy --set init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset jsb --name decay-from31-legacy --set lr_decay_start=30 init=stacked patience=0 valid_state=carry"
  echo "music --dataset jsb --name gru-nobias-legacy --set gru_hidden_bias=false init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset jsb --name kl-fast-legacy --set kl_epochs=5 init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset jsb --name kl-from0-legacy --set kl_start=0.0 init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset jsb --name kl-none-legacy --set kl_schedule=constant kl_start=1.0 init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset jsb --name kl-slow-legacy --set kl_epochs=40 init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset jsb --form npz --name legacy --set init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset jsb --name lr-decay21-legacy --set lr_decay_start=21 init=stacked patience=0 valid_state=carry"
  echo "music --dataset jsb --name lr3e-3-legacy --set lr=0.003 init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset jsb --name original-code-legacy --set adam_eps_style=lasagne gru_hidden_bias=false lr_decay_start=21 init=stacked patience=0 valid_state=carry"
  echo "music --dataset jsb --name seed124-legacy --set seed=124 init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset jsb --name seed125-legacy --set seed=125 init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset jsb --name seed126-legacy --set seed=126 init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset muse --form classic --name legacy --set init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset muse --form npz --name legacy --set init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset nottingham --form classic --name legacy --set init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset nottingham --variant filt --name legacy --set init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset nottingham --variant filt+Resq --name legacy --set init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset nottingham --variant smooth --name legacy --set init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset nottingham --name batch8-legacy --set batch_size=8 init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset nottingham --form npz --name legacy --set init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset piano --form classic --name legacy --set init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset piano --name batch8-legacy --set batch_size=8 init=stacked patience=0 lr_decay_start=20 valid_state=carry"
  echo "music --dataset piano --form npz --name legacy --set init=stacked patience=0 lr_decay_start=20 valid_state=carry"
}

if [[ "${1:-}" == "--list" ]]; then
  commands | sed "s/^/$PY -m srnn.experiment /"
  exit 0
fi
mkdir -p runs/logs
# On a GPU box every visible GPU takes one run at a time (JOBS defaults to their number);
# job slot k runs on the (k mod GPUS)-th GPU that CUDA_VISIBLE_DEVICES names (all when unset).
GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count())")
GPU_LIST=$(echo "${CUDA_VISIBLE_DEVICES-$(seq -s, 0 $((GPUS - 1)))}" | tr , ' ')   # what slots map to
export GPUS GPU_LIST
commands | xargs -P "${JOBS:-$(( GPUS > 0 ? GPUS : 1 ))}" --process-slot-var=SLOT -I{} sh -c \
  'if [ "$GPUS" -gt 0 ]; then set -- $GPU_LIST; shift $((SLOT % GPUS)); export CUDA_VISIBLE_DEVICES=$1; fi; '\
'log="runs/logs/$(echo "{}" | tr -c "A-Za-z0-9+=-" "_").log"; '"$PY"' -m srnn.experiment {} > "$log" 2>&1 && echo "done: {}" || echo "FAILED: {} (see $log)"'
