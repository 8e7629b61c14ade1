#!/usr/bin/env bash
# One prepared GPU run for issue 3: train the edge preset at full scale with --device cuda on the synthetic
# catalogue (24,500 images: ~20k train, ~4k gallery, ~500 queries) and, when present, on a converted
# fashion-product dataset at .carry/fp. Written for a bare GPU machine with python3 + torch + numpy + OpenCV
# and no network: the package is installed from this checkout without dependencies.
# While the GPU trains the real catalogue, the synthetic evaluation runs on the CPUs.
# Results in $OUT (default /tmp/fsn-gpu-out): log.txt, eval_synth.json, eval_real.json, localisation.json,
# ckpt/{attribute,no_aam,fsn}.pt (the synthetic run; benchmarks/experiments/methods/gpu_report.py turns them into tables).
# Usage:  OUT=/tmp/out bash benchmarks/experiments/methods/gpu_run.sh        (EPOCHS, REAL_EPOCHS, COUNT, DEVICE, PROFILE override)
# Python runs from $WORK with PYTHONSAFEPATH=1, never from the repository root: there the repository's top-level
# fashionsearchnet/ folder (only errors.py, fileio.py, ...) shadows the installed package ("No module named
# 'fashionsearchnet.app'"). A training cut by its timeout is logged and the run goes on; any other failure stops it,
# and it ends non-zero when a result file is missing or empty.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd -P)
OUT=${OUT:-/tmp/fsn-gpu-out}
WORK=${WORK:-/tmp/fsn-gpu}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
COUNT=${COUNT:-24500}
EPOCHS=${EPOCHS:-10,10,10}
REAL_EPOCHS=${REAL_EPOCHS:-10,10,10}
PRESET=${PRESET:-edge}
SIZE=${SIZE:-128}
PROFILE=${PROFILE:-basic}  # synthetic catalogue profile: basic | detailed
mkdir -p "$OUT/ckpt" "$WORK"
OUT=$(cd "$OUT" && pwd -P) WORK=$(cd "$WORK" && pwd -P)  # absolute: python runs from $WORK
export PYTHONUNBUFFERED=1
LOG=$OUT/log.txt
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a "$LOG"; }
"$PY" -m pip install -q --no-deps --no-build-isolation --no-index --target "$WORK/site" "$REPO" >"$WORK/pip.log" 2>&1 \
  || { cat "$WORK/pip.log"; exit 3; }
export PYTHONPATH=$WORK/site PYTHONSAFEPATH=1
cd "$WORK"
"$PY" -c "import fashionsearchnet.app.cli" || { echo "gpu_run.sh: the installed package does not import" >&2; exit 3; }
nolog() { grep -v "it/s" || true; }  # drop progress lines; no lines left is not an error
timed() {  # timed SECONDS CMD...: exit 124 (cut by the timeout, logged) is allowed, any other failure stops the run
  local rc=0
  timeout "$@" || rc=$?
  [ "$rc" -ne 124 ] || echo "gpu_run.sh: '${*:2}' cut by its $1 s timeout (going on with what it wrote)" >&2
  [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ] || { echo "gpu_run.sh: '${*:2}' failed with exit $rc" >&2; return "$rc"; }
  return 0
}
FSN=("$PY" -m fashionsearchnet.app.cli)
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  "$PY" -c "import torch, cv2, numpy, platform; print('python', platform.python_version(), 'torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'cv2', cv2.__version__, 'numpy', numpy.__version__)"
  echo "cpus $(nproc)"
} 2>&1 | tee -a "$LOG"
stamp "synth start"
"${FSN[@]}" synth "$WORK/synth" --count "$COUNT" --seed 0 --size "$SIZE" --splits 0.8163,0.1633,0.0204 --profile "$PROFILE" 2>&1 \
  | nolog | tee -a "$LOG"
sha256sum "$WORK/synth/attributes.csv" | tee -a "$LOG"
stamp "synth train start"
timed "${SYNTH_TRAIN_S:-330}" "${FSN[@]}" train "$WORK/synth" --out "$WORK/run-synth" --preset "$PRESET" \
  --method attribute,no_aam,fsn --epochs "$EPOCHS" --device "$DEVICE" --seed 0 2>&1 | nolog | tee -a "$LOG"
stamp "synth train exit ${PIPESTATUS[0]}"
for m in attribute no_aam fsn; do
  if [ -f "$WORK/run-synth/$m/checkpoint.pt" ]; then cp "$WORK/run-synth/$m/checkpoint.pt" "$OUT/ckpt/$m.pt"; fi
done
# CPU: synthetic evaluation (every protocol) and localisation, in the background
( rc=0; "${FSN[@]}" eval "$WORK/run-synth" "$WORK/synth" --json "$OUT/eval_synth.json" --device cpu \
    --protocols query,manipulation,region,region_differ,region_match,item,adde >"$WORK/eval_synth.log" 2>&1 || rc=$?
  echo "eval synth exit $rc" >>"$WORK/eval_synth.log"; exit "$rc" ) &
EVAL_PID=$!
# the repo root after the installed package on the path: benchmarks/ is found, its fashionsearchnet/ never shadows
PYTHONPATH="$WORK/site:$REPO" "$PY" - "$WORK" "$OUT" "$DEVICE" >>"$LOG" 2>&1 <<'PYEOF' &
import json, sys
from pathlib import Path
from benchmarks.experiments.methods.train_methods import _localisation
from fashionsearchnet.data.dataset import load_dataset
work, out, device = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
ds = load_dataset(work / "synth")
loc = _localisation(work / "run-synth", ds, ds.indices("gallery")[:500], device)
(out / "localisation.json").write_text(json.dumps(loc, indent=2, default=float))
print("localisation written")
PYEOF
LOC_PID=$!
REAL=$REPO/.carry/fp
if [ -f "$REAL/attributes.csv" ]; then
  stamp "real train start"
  timed "${REAL_TRAIN_S:-150}" "${FSN[@]}" train "$REAL" --out "$WORK/run-real" --preset "$PRESET" \
    --method attribute,no_aam,fsn --epochs "$REAL_EPOCHS" --device "$DEVICE" --seed 0 2>&1 | nolog | tee -a "$LOG"
  stamp "real train exit ${PIPESTATUS[0]}"
  timed "${REAL_EVAL_S:-120}" "${FSN[@]}" eval "$WORK/run-real" "$REAL" --json "$OUT/eval_real.json" \
    --protocols query,manipulation,item --device "$DEVICE" 2>&1 | nolog | tail -30 | tee -a "$LOG"
  stamp "real eval done"
fi
rc=0
wait "$LOC_PID" || rc=$?
stamp "localisation exit $rc"
[ "$rc" -eq 0 ] || { tail -20 "$LOG" >&2; exit "$rc"; }
wait "$EVAL_PID" || rc=$?
nolog <"$WORK/eval_synth.log" | tail -40 >>"$LOG"
[ "$rc" -eq 0 ] || { echo "gpu_run.sh: synthetic eval failed (exit $rc), see $WORK/eval_synth.log" >&2; exit "$rc"; }
missing=()
for f in "$OUT/eval_synth.json" "$OUT/localisation.json" "$OUT"/ckpt/{attribute,no_aam,fsn}.pt; do
  [ -s "$f" ] || missing+=("$f")
done
if [ -f "$REAL/attributes.csv" ] && [ ! -s "$OUT/eval_real.json" ]; then missing+=("$OUT/eval_real.json"); fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "gpu_run.sh: missing or empty results: ${missing[*]}" >&2
  exit 1
fi
stamp "all done"
