#!/usr/bin/env bash
# The demo's reference bundle (app/demo/reference/, issue 17): the region study's seed-0 edge fsn run (basic
# profile, 8,000 images, data seed 0, epochs 8,4,10; train_runs.sh), calibrated (attention region heads, ROI thresholds,
# fsn_region terms: fsn calibrate, which the trainer also runs at the end of an fsn run) and exported fp32.
#   usage: benchmarks/experiments/region_search/reference_bundle.sh [WORK] [OUT]
#          (defaults /tmp/fsn-region and app/demo/reference; FSN = the fsn command)
set -euo pipefail
WORK=${1:-/tmp/fsn-region}
OUT=${2:-app/demo/reference}
FSN=${FSN:-fsn}
SEEDS=0 FSN="$FSN" bash "$(dirname "$0")/train_runs.sh" "$WORK"
$FSN calibrate "$WORK/edge-s0/fsn" --data "$WORK/train-basic-8k" --json "$WORK/edge-s0/calibrate.json"
$FSN export "$WORK/edge-s0" --method fsn --out "$WORK/reference-bundle"
mkdir -p "$OUT"
cp "$WORK/reference-bundle"/{manifest.json,backbone.onnx,heads.onnx,params.npz} "$OUT/"
sha256sum "$OUT"/{manifest.json,backbone.onnx,heads.onnx,params.npz}
