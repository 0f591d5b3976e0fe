#!/usr/bin/env bash
# Reproduces the shipped models in models/: a phantom training set from seeds disjoint from the
# demo (100000+), imported into the labels store, then every architecture trained by `sgus train`,
# and the default segmenter trained on rendered appearance families. About three and a half hours
# on a 2-core CPU. Usage: bash scripts/train_models.sh [PATIENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
PATIENTS=${1:-150}
SGUS=.venv/bin/sgus
TRAIN_DIR=${SGUS_DATA_DIR:-data}/phantom-train
[ -f "$TRAIN_DIR/labels.csv" ] || $SGUS phantoms --out "$TRAIN_DIR" --patients "$PATIENTS" --first-seed 100000
$SGUS import "$TRAIN_DIR" --labels "$TRAIN_DIR/labels.csv" --dataset phantom-train --rater phantom-truth
train() { # NAME TASK ARCH EPOCHS [OPTIONS...]
  local name=$1 task=$2 arch=$3 epochs=$4; shift 4
  [ -f "models/$name.keras" ] && { echo "models/$name.keras exists: skipped"; return; }
  $SGUS train "$task" --dataset phantom-train --arch "$arch" --epochs "$epochs" --out "$name" "$@"
}
train unet segment unet 30 --option base_filters=8 --option depth=4
train grader-crop grade grader_crop 60
train grader-frame grade grader_frame 40
train linknet segment linknet 30
train fcn8s segment fcn8s 30
# FC-DenseNets: slim (growth 4, stem 16) at 96x128 and without dropout, so that they train on a
# 2-core CPU; dropout after 4-channel layers shifts the batch-norm statistics so much that
# validation IoU collapses while training IoU climbs.
dense=(--input-size 96x128 --option growth_rate=4 --option stem_filters=16 --option dropout=0)
train fcdensenet56 segment fcdensenet56 20 "${dense[@]}"
train fcdensenet67 segment fcdensenet67 16 "${dense[@]}"
train fcdensenet103 segment fcdensenet103 20 "${dense[@]}"
# The default segmenter: a prompted U-Net trained only on frames rendered on the fly from the three
# appearance families, chosen by its worst held-out-family IoU (leave-one-family-out; about 80
# minutes for the four networks on a 2-core CPU). Kept as models/unet-synth.*.
[ -f models/unet-synth.keras ] || $SGUS bench-generalisation --model unet --keep-as unet-synth --make-default
# Measure every runtime (Keras, ONNX Runtime, OpenVINO), medians of 3 rounds; record the fastest.
$SGUS bench --record --rounds 3
