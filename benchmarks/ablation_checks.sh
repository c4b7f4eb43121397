#!/usr/bin/env bash
# Checks on the Table 3 study (benchmarks/ablation_caltech.sh), same data and budget:
#  1. the Krizhevsky replica's presets that did not train at the reference lr 5e-3 (they lose their
#     conv5 units in the first epoch and never leave the majority-class plateau: "did not train"
#     in the table) again at a fifth of the learning rate, 1e-3, beside the unchanged replica at 1e-3
#     (after 2 epochs at 5e-3 / 2.5e-3 / 1e-3, 0.6 / 7 / 22 % of the replica's conv5 units without
#     layers 6, 7 are still active: the smaller step keeps them alive);
#  2. the unchanged networks with seed 1: how much a row moves from seed to seed (the seed also
#     draws the validation part).
# Resumable like the study itself. Then: python benchmarks/ablation_summary.py --runs "$OUT"
#
#   bash benchmarks/ablation_checks.sh        (env: CALTECH=..., OUT=..., PYTHON=..., EPOCHS=..., CACHE=...)
set -euo pipefail

CALTECH=${CALTECH:-../shared/data/caltech101}
OUT=${OUT:-runs/ablation-caltech101}
PYTHON=${PYTHON:-python}
EPOCHS=${EPOCHS:-60}
CACHE=${CACHE:-$OUT/cache}

run() {  # folder seed variant presets [more ablate flags]
  local folder=$1 seed=$2 variant=$3 presets=$4
  shift 4
  "$PYTHON" -m zfkeras ablate "$CALTECH/101_ObjectCategories" --list "$CALTECH/train.txt" --val-fraction 0.1 \
    --test-list "$CALTECH/test.txt" --exclude-class BACKGROUND_Google --cache-dir "$CACHE" --epochs "$EPOCHS" \
    --seed "$seed" --variant "$variant" --presets "$presets" --out "$OUT/$folder/$variant" "$@"
}

run lr0.001 0 alexnet zfnet,no_conv3_conv4,no_fc6_fc7,no_conv3_conv4_fc6_fc7,fc_double --lr 0.001
run seed1 1 zf zfnet
run seed1 1 alexnet zfnet
