#!/usr/bin/env bash
# The training runs of the region-search study (issue 17): one basic-profile synthetic catalogue (8,000 images,
# data seed 0), the edge preset trained with seeds 0 and 1 (attribute, no_aam, fsn; epochs 8,4,10 as the methods
# study). The seed-0 fsn run is also the demo's reference bundle (see app/demo/reference/MODEL_CARD.md).
#   usage: benchmarks/experiments/region_search/train_runs.sh [WORK]   (default /tmp/fsn-region; SEEDS="0 1")
set -euo pipefail
WORK=${1:-/tmp/fsn-region}
FSN=${FSN:-fsn}
SEEDS=${SEEDS:-"0 1"}
DATA="$WORK/train-basic-8k"
mkdir -p "$WORK"
[ -f "$DATA/attributes.csv" ] || $FSN synth --profile basic --count 8000 --seed 0 --splits 0.9,0.08,0.02 "$DATA"
for s in $SEEDS; do
  $FSN train "$DATA" --preset edge --epochs 8,4,10 --seed "$s" --out "$WORK/edge-s$s"
done
