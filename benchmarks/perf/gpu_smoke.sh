#!/usr/bin/env bash
# First run on a fresh NVIDIA GPU machine (issue 18): does the GPU path install and run?
#
#   bash benchmarks/perf/gpu_smoke.sh BUNDLE_FP32 [BUNDLE_FP16]
#
# Bundles are exported beforehand on a CPU machine (fsn export RUN --out B [--precision fp16]), so this machine needs
# no torch. Steps, each failing loudly (set -euo pipefail; a failed check exits non-zero with the reason):
#   1. refuse without a GPU (nvidia-smi missing or listing no GPU);
#   2. print GPU, driver, the CUDA version the driver supports;
#   3. install this checkout with the extra matching the driver ([gpu-cu12] for a CUDA 12 driver, [gpu-cu13] for
#      13+) into a fresh venv, TensorRT's libraries from NVIDIA's index, then make onnxruntime-gpu the only
#      onnxruntime package (SKIP_INSTALL=1: use the current python as it is, e.g. an NGC container or a Jetson);
#   4. print the TensorRT, cuda-python CUDA runtime and onnxruntime versions; check exactly one onnxruntime package;
#   5. fsn engines: fp32 engines, then fp16 engines (BUNDLE_FP16 if given, else --fp16 on the fp32 bundle:
#      TensorRT 10 only), then both again: the second build must be a cache hit ("cached" for every graph);
#   6. features of ort-cuda and trt (fp32 and fp16) against ort-cpu at batch 1 and 5; error = max|x - ref| /
#      max(max|ref|, 1) over attr_reps and region_reps; tolerances: fp32 1e-3 (trt fp32 is built without TF32;
#      ort-cuda may use TF32), fp16 3e-2 (the export's fp16 parity tolerance);
#   7. latency/throughput: fsn bench --backends ort-cpu,ort-cuda,trt (batch-1 p50/p99, best of batch 16/32/64).
# Results in $OUT (default /tmp/fsn-gpu-smoke): log.txt, versions.txt, parity.json, bench.json, bench.md.
# Python runs from $WORK with PYTHONSAFEPATH=1, never from the repository root: the repository's top-level
# fashionsearchnet/ folder would shadow the installed package there.
set -euo pipefail

die() { echo "gpu_smoke.sh: $*" >&2; exit 1; }
[ $# -ge 1 ] || { echo "usage: bash benchmarks/perf/gpu_smoke.sh BUNDLE_FP32 [BUNDLE_FP16]" >&2; exit 2; }

# 1. a GPU, or a clear refusal
if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu_smoke.sh: no NVIDIA GPU here (nvidia-smi not found); run this on a machine with an NVIDIA GPU and driver" >&2
  exit 2
fi
if ! GPUS=$(nvidia-smi -L 2>&1) || ! grep -q "^GPU " <<<"$GPUS"; then
  echo "gpu_smoke.sh: no NVIDIA GPU here (nvidia-smi -L: ${GPUS:-no output}); check the driver" >&2
  exit 2
fi

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
B32=$(cd "$1" 2>/dev/null && pwd -P) || die "$1: no such bundle folder (export one on a CPU machine: fsn export RUN --out B)"
B16=""
if [ $# -ge 2 ]; then
  B16=$(cd "$2" 2>/dev/null && pwd -P) || die "$2: no such bundle folder"
fi
OUT=${OUT:-/tmp/fsn-gpu-smoke}
WORK=${WORK:-/tmp/fsn-gpu-smoke-work}
RUNS=${RUNS:-100}
mkdir -p "$OUT" "$WORK"
LOG=$OUT/log.txt
: >"$LOG"
say() { echo "== $*" | tee -a "$LOG"; }

# 2. GPU, driver, CUDA the driver supports
say "GPU and driver"
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader | tee -a "$LOG" "$OUT/versions.txt"
DRIVER_CUDA=$(nvidia-smi | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\.[0-9]*\).*/\1/p' | head -1)
[ -n "$DRIVER_CUDA" ] || die "cannot read the driver's CUDA version from nvidia-smi"
echo "driver supports CUDA $DRIVER_CUDA" | tee -a "$LOG" "$OUT/versions.txt"
CUDA_MAJOR=${DRIVER_CUDA%%.*}
if [ "$CUDA_MAJOR" -ge 13 ]; then EXTRA=gpu-cu13; ORT_GPU='onnxruntime-gpu[cuda,cudnn]>=1.27'
elif [ "$CUDA_MAJOR" -eq 12 ]; then EXTRA=gpu-cu12; ORT_GPU='onnxruntime-gpu[cuda,cudnn]>=1.21,<1.27'
else die "the driver supports CUDA $DRIVER_CUDA; the GPU extras need CUDA 12 or 13 (upgrade the driver to >= 525)"
fi

# 3. install the matching extra (fresh venv) or use the current python
if [ "${SKIP_INSTALL:-0}" = 1 ]; then
  PY=${PYTHON:-python3}
  say "SKIP_INSTALL=1: using $PY as it is"
else
  say "installing .[$EXTRA] into $WORK/venv"
  "${PYTHON:-python3}" -m venv "$WORK/venv"
  PY=$WORK/venv/bin/python
  "$PY" -m pip install -q --upgrade pip 2>&1 | tee -a "$LOG"
  "$PY" -m pip install -q "$REPO[$EXTRA]" --extra-index-url https://pypi.nvidia.com 2>&1 | tee -a "$LOG"
  # the base package's onnxruntime and onnxruntime-gpu share a module: keep only onnxruntime-gpu
  "$PY" -m pip uninstall -q -y onnxruntime onnxruntime-gpu 2>&1 | tee -a "$LOG"
  "$PY" -m pip install -q "$ORT_GPU" 2>&1 | tee -a "$LOG"
fi
cd "$WORK"  # never the repository root (shadowing), see above
export PYTHONSAFEPATH=1
FSN=("$PY" -m fashionsearchnet.app.cli)

# 4. versions and exactly one onnxruntime package
say "versions"
"$PY" - <<'PYEOF' 2>&1 | tee -a "$LOG" "$OUT/versions.txt"
import sys
import onnxruntime, tensorrt
from fashionsearchnet.runtime import gpu_env
print("python", sys.version.split()[0])
print("tensorrt", tensorrt.__version__)
print("onnxruntime", onnxruntime.__version__, onnxruntime.get_available_providers())
print(gpu_env.describe())
found = gpu_env.onnxruntime_distributions()
print("onnxruntime packages:", found)
problem = gpu_env.onnxruntime_conflict(found)
if problem or list(found) != ["onnxruntime-gpu"]:
    sys.exit("gpu_smoke.sh: need exactly one onnxruntime package, onnxruntime-gpu; " + (problem or f"found {found}"))
PYEOF

# 5. engines: fp32, fp16, then again (cache hits)
engines() {  # engines LABEL ARGS... ; the command's log goes to $OUT/engines-LABEL.txt
  local label=$1; shift
  "${FSN[@]}" engines "$@" 2>&1 | tee "$OUT/engines-$label.txt" | tee -a "$LOG"
}
say "fsn engines fp32"
engines fp32 "$B32" --max-batch 8
FP16_BUNDLE=${B16:-$B32}
say "fsn engines fp16 ($FP16_BUNDLE)"
engines fp16 "$FP16_BUNDLE" --fp16 --max-batch 8
say "fsn engines again: must be cache hits"
engines fp32-again "$B32" --max-batch 8
engines fp16-again "$FP16_BUNDLE" --fp16 --max-batch 8
for label in fp32-again fp16-again; do
  for g in backbone heads; do
    grep -q "$g engine (cached)" "$OUT/engines-$label.txt" || die "$label: the $g engine was built again, not a cache hit (see $OUT/engines-$label.txt)"
  done
done

# 6. ort-cuda and trt against ort-cpu at batch 1 and 5
say "features vs ort-cpu"
"$PY" - "$B32" "$FP16_BUNDLE" "$OUT/parity.json" <<'PYEOF' 2>&1 | tee -a "$LOG"
import json, sys
import numpy as np
from fashionsearchnet.runtime.backends import select_backend
from fashionsearchnet.runtime.bench import synthetic_images
from fashionsearchnet.runtime.bundle import Bundle
from fashionsearchnet.runtime.extractor import FeatureExtractor

TOL = {"fp32": 1e-3, "fp16": 3e-2}
b32, b16, out = Bundle.open(sys.argv[1]), Bundle.open(sys.argv[2]), sys.argv[3]
imgs = synthetic_images(5, (256, 256), seed=1)
rows, bad = [], []

def feats(fx, n):
    f = fx.extract(imgs[:n], batch_size=n)
    return {"attr_reps": np.asarray(f.attr_reps), "region_reps": np.asarray(f.region_reps)}

cases = [("ort-cuda", b32, "fp32", None), ("trt", b32, "fp32", "fp32"), ("trt", b16, "fp16", "fp16")]
refs = {}
for kind, bundle, prec, trt_prec in cases:
    if str(bundle.path) not in refs:
        with FeatureExtractor(bundle, backend="ort-cpu") as ref:
            refs[str(bundle.path)] = {n: feats(ref, n) for n in (1, 5)}
    backend = select_backend(kind, bundle, precision=trt_prec, max_batch=8)
    with FeatureExtractor(bundle, backend=backend) as fx:
        for n in (1, 5):
            got, want = feats(fx, n), refs[str(bundle.path)][n]
            err = max(float(np.abs(got[k] - want[k]).max() / max(float(np.abs(want[k]).max()), 1.0)) for k in want)
            row = {"backend": fx.backend_name, "precision": prec, "batch": n, "error": err, "tolerance": TOL[prec],
                   "ok": err <= TOL[prec]}
            rows.append(row)
            print(f"{row['backend']:8s} {prec} batch {n}: error {err:.2e} (tolerance {TOL[prec]:g}) {'ok' if row['ok'] else 'FAIL'}")
            bad += [] if row["ok"] else [row]
json.dump(rows, open(out, "w"), indent=2)
if len(rows) != 6:
    sys.exit(f"gpu_smoke.sh: expected 6 comparisons, got {len(rows)}")
if bad:
    sys.exit(f"gpu_smoke.sh: {len(bad)} comparison(s) over tolerance: {bad}")
PYEOF

# 7. latency / throughput: fp32 engines with the profile fsn bench's throughput batches need (16/32/64)
say "fsn engines fp32 --max-batch 64 (for fsn bench), then fsn bench (runs $RUNS)"
engines bench "$B32" --max-batch 64 --opt-batch 1
"${FSN[@]}" bench "$B32" --json "$OUT/bench.json" --runs "$RUNS" --backends ort-cpu,ort-cuda,trt 2>&1 | tee -a "$LOG"
"$PY" - "$OUT/bench.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
missing = [k for k in ("ort-cpu", "ort-cuda", "trt") if k not in r]
if missing:
    sys.exit(f"gpu_smoke.sh: fsn bench has no rows for {missing} (see bench.md 'Skipped')")
PYEOF
cat "$OUT/bench.md" | tee -a "$LOG"
say "gpu_smoke.sh: all checks passed; results in $OUT"
