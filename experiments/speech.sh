#!/usr/bin/env bash
# Every run behind results/speech/ on the embedded LibriSpeech sample: SRNN's four inference
# networks, VRNN, VRNN-I and the RNN, VRNN-GMM and RNN-GMM, and three of them on the sample
# permuted within frames.
#   bash experiments/speech.sh           # prepare the sample (twice) and run them, one after another
#   bash experiments/speech.sh --list    # print the commands only
# The records ran on this project's 2-core CPU with OMP_NUM_THREADS=1; set it too to get
# the same numbers on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
PLAIN=runs/data/sample-782ad59953b8      # what python -m srnn.speech sample --out runs/data prints
PERM=runs/data/sample-0d8e5a03ae18       # ... and with --permute-seed 1

commands() {
  echo "speech --prepared $PLAIN"
  for variant in smooth filt+Resq filt; do
    echo "speech --prepared $PLAIN --variant $variant"
  done
  echo "speech --prepared $PLAIN --preset vrnn_speech_small"
  echo "speech --prepared $PLAIN --preset vrnn_speech_small --set vrnn_prior=standard"
  echo "speech --prepared $PLAIN --preset rnn_speech_small"
  echo "speech --prepared $PLAIN --preset vrnn_gmm_speech_small"
  echo "speech --prepared $PLAIN --preset rnn_gmm_speech_small"
  echo "speech --prepared $PERM"
  echo "speech --prepared $PERM --preset vrnn_speech_small"
  echo "speech --prepared $PERM --preset rnn_speech_small"
  # this project's first protocol, before the original code's protocol became the default (see results/README.md)
  echo "speech --prepared $PLAIN --name legacy --set filter_layers=1 init=stacked valid_state=carry test_pass=windows"
}

if [ "${1:-}" = "--list" ]; then
  commands | sed "s/^/python -m srnn.experiment /"
  exit 0
fi
[ "$($PY -m srnn.speech sample --out runs/data)" = "$PLAIN" ]
[ "$($PY -m srnn.speech sample --out runs/data --permute-seed 1)" = "$PERM" ]
commands | while read -r line; do
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=1 $PY -m srnn.experiment $line
done
