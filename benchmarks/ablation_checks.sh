#!/usr/bin/env bash
# A check on the Table 3 study (benchmarks/ablation_caltech.sh), same data, budget and seed: the
# Krizhevsky replica's layer removals, which did not train at the reference lr 5e-3 (their conv5
# units die in the first epoch and the net never leaves the majority-class plateau: "did not
# train" in the table), again at lr 1e-3, beside the unchanged replica at 1e-3. After 2 epochs at
# 5e-3 / 2.5e-3 / 1e-3, 0.6 / 7 / 22 % of the conv5 units of the replica without layers 6, 7 are
# still active: the smaller step keeps them alive.
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

run lr0.001 0 alexnet zfnet,no_conv3_conv4,no_fc6_fc7,no_conv3_conv4_fc6_fc7 --lr 0.001
