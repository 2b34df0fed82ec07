#!/usr/bin/env bash
# One prepared GPU check (issue 16): parity, FLOP/s, continent run with the time
# split and nvidia-smi utilisation, LocalCUDACluster; one JSON report.
#
#   bash benchmarks/gpu_check.sh            # on a fresh CUDA machine, from the repo root
#   bash benchmarks/gpu_check.sh --cpu      # the Python stages on CPU at tiny sizes (a check)
#
# Writes $OUT/gpu_report.json (OUT defaults to ./gpu_check_out). Every stage has
# its own `timeout`, so a slow one cannot eat the budget (at most 7.8 min in all);
# the report records each stage's exit status and seconds, failed ones included.
set -u
cd "$(dirname "$0")/.."
CPU=0
[ "${1:-}" = "--cpu" ] || [ "${1:-}" = "--dry-run" ] && CPU=1
OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT/parts"
: > "$OUT/parts/stages.tsv"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

stage() {  # stage NAME SECONDS COMMAND...: run with a time limit, log rc and seconds
  local name=$1 limit=$(($2 * SCALE)); shift 2
  local start=$SECONDS
  echo "== $name (limit ${limit}s)"
  timeout --kill-after=10 "$limit" "$@" > "$OUT/parts/$name.log" 2>&1
  local rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - start))" >> "$OUT/parts/stages.tsv"
  tail -n 15 "$OUT/parts/$name.log"
  echo "== $name: rc=$rc in $((SECONDS - start)) s"
  return 0
}

if [ "$CPU" = 1 ]; then
  PY="${PYTHON:-python3}"
  FLAG=--cpu
  DEVICE=cpu EXTENT=64 BLOCKS=2 CHUNKS=32
  SCALE=${SCALE:-6}  # a loaded 2-core CPU: generous limits, this is a check of the script
else
  SCALE=1
  # its own venv; system packages visible, so a preinstalled CUDA torch is reused.
  # torch inside the project's range first, so `pip install -e .` keeps it.
  setup() {
    python3 -m venv --system-site-packages .venv-gpu || return 1
    if ! .venv-gpu/bin/python -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
      .venv-gpu/bin/pip install -q "torch>=2.4,<2.14" || return 1
    fi
    .venv-gpu/bin/pip install -q -e ".[gpu]"
  }
  stage setup 180 bash -c "$(declare -f setup); setup"
  PY="$PWD/.venv-gpu/bin/python"
  "$PY" -c "import torch, xdeepbedmap" 2> /dev/null || PY=python3  # setup failed: system python
  FLAG=
  DEVICE=cuda EXTENT=1024 BLOCKS=12 CHUNKS=512
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/parts/nvidia_smi.txt" 2>&1
fi

stage parity 45 "$PY" benchmarks/gpu_check.py parity --out "$OUT" $FLAG
stage flops 60 "$PY" benchmarks/gpu_check.py flops --out "$OUT" $FLAG

# the continent run: a random BLOCKS-block generator (speed only) to Zarr, with
# the phase split; nvidia-smi samples utilisation every 0.5 s meanwhile
"$PY" -c "
import torch; from xdeepbedmap.model import Generator, save_checkpoint
torch.manual_seed(0); save_checkpoint(Generator($BLOCKS), '$OUT/g$BLOCKS.safetensors')" \
  > "$OUT/parts/model.log" 2>&1
SAMPLER=
if command -v nvidia-smi > /dev/null && [ "$CPU" = 0 ]; then
  nvidia-smi --query-gpu=timestamp,index,utilization.gpu,memory.used --format=csv,noheader,nounits \
    -lms 500 > "$OUT/parts/utilisation.csv" 2>/dev/null &
  SAMPLER=$!
fi
for DTYPE in float32 mixed; do  # the first run also writes the input files
  LIMIT=45; [ "$DTYPE" = float32 ] && LIMIT=75
  stage "continent_$DTYPE" "$LIMIT" "$PY" benchmarks/continent.py --skip-graph --inputs zarr \
    --extent "$EXTENT" --chunks "$CHUNKS" --device "$DEVICE" --dtype "$DTYPE" \
    --model "$OUT/g$BLOCKS.safetensors" --cache "$OUT/cache" --json "$OUT/parts/continent_$DTYPE.json"
done
[ -n "$SAMPLER" ] && kill "$SAMPLER" 2> /dev/null
if [ -s "$OUT/parts/utilisation.csv" ]; then
  "$PY" - "$OUT" << 'PYEOF'
import json, sys
rows = [line.split(", ") for line in open(f"{sys.argv[1]}/parts/utilisation.csv") if line.strip()]
util = [float(r[2]) for r in rows if len(r) > 3 and r[2].replace(".", "").isdigit()]
mem = [float(r[3]) for r in rows if len(r) > 3 and r[3].replace(".", "").isdigit()]
summary = {"samples": len(util), "mean_util_percent": sum(util) / max(1, len(util)),
           "max_util_percent": max(util, default=0), "max_memory_mib": max(mem, default=0)}
json.dump(summary, open(f"{sys.argv[1]}/parts/utilisation.json", "w"))
PYEOF
fi
rm -rf "$OUT/cache"  # inputs written for the run: not part of the report

stage cluster 45 "$PY" benchmarks/gpu_check.py cluster --out "$OUT" $FLAG
"$PY" benchmarks/gpu_check.py merge --out "$OUT" > /dev/null
echo "report: $OUT/gpu_report.json"
