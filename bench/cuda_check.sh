#!/usr/bin/env bash
# bench/cuda_check.sh: flanlab's CUDA paths checked on a GPU machine, with one summary block at the end (issue 16).
#
# usage, from a checkout of flanlab on the GPU machine:
#   bench/cuda_check.sh                install (offline) into a folder of its own, then run every check
#   bench/cuda_check.sh --no-install   use the Python's packages as they are (e.g. this project's .venv)
# Before a GPU session, on a machine that reaches PyPI: bench/cuda_wheels.sh (writes bench/wheels/, git-ignored;
# carry it with the checkout, ~15 MB).
#
# Environment (all optional):
#   PYTHON=python3                  the Python with the CUDA build of torch (never replaced: checked before/after)
#   CUDA_CHECK_WHEELS=bench/wheels  the wheels folder
#   CUDA_CHECK_WORK=DIR             where everything is written (default: a fresh /tmp/flanlab-cuda-check.XXXXXX)
#   CUDA_CHECK_CPU_HALF=1           without CUDA, run the CPU half of tests/test_cuda.py (0: leave it out)
#
# Steps: machine (torch, CUDA, GPUs) -> install -> imports -> `pytest -m cuda` (timeout 250 s) -> `flanlab demo
# model=tiny-llama` on CUDA (timeout 110 s) -> speeds, for the record (timeout 40 s) -> the summary
# (bench/cuda_summary.py: PASS/FAIL/SKIP per check, the speeds, and a last line "result: PASS|FAIL (...)").
# Exit status 0 when no check failed. Worst case, every timeout reached: under 8 minutes.
# Without CUDA the GPU checks are reported as "no CUDA: skipped" (the cuda tests skip, saying why), the CPU half
# runs, and the exit status is that of the CPU half.
#
# Install: pip --no-index --find-links $WHEELS --no-deps --target $WORK/site, first the wheels (datasets, gguf,
# pytest and the few packages they need that the machine lacks), then flanlab itself (`pip install --no-deps`, built
# from this checkout with the shipped setuptools wheel); then PYTHONPATH=<checkout>:$WORK/site. Nothing goes into
# the Python's own site-packages (a system Python may refuse it: PEP 668), and torch's version and location are
# compared before and after. A Python without pip gets the wheels unpacked there instead (a wheel is a zip of what
# goes into site-packages) and runs flanlab from the checkout.
#
# Set here: HF_HUB_OFFLINE=1, FLANLAB_CACHE=$WORK/cache (fresh), TOKENIZERS_PARALLELISM=false,
# CUBLAS_WORKSPACE_CONFIG=:4096:8 (deterministic cuBLAS: the exact-resume test also calls
# torch.use_deterministic_algorithms(True) in its training processes). TF32 is turned off by the comparison tests
# themselves (torch.backends flags; NVIDIA_TF32_OVERRIDE=0 for the processes they launch), not here: the speeds are
# measured with torch's defaults.
set -uo pipefail

INSTALL=1
for arg in "$@"; do
  case "$arg" in
    --no-install) INSTALL=0 ;;
    -h|--help) sed -n '2,/^set /{/^set /d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "cuda_check: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
PY=${PYTHON:-python3}
WHEELS=${CUDA_CHECK_WHEELS:-$REPO/bench/wheels}
WORK=${CUDA_CHECK_WORK:-$(mktemp -d /tmp/flanlab-cuda-check.XXXXXX)}
mkdir -p "$WORK"
STEPS=$WORK/steps.tsv
: > "$STEPS"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false CUBLAS_WORKSPACE_CONFIG=:4096:8
export FLANLAB_CACHE=$WORK/cache
T0=$(date +%s)

step() {  # step NAME STATUS DETAIL: one line of the summary
  printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$STEPS"
  echo "[cuda_check] $1: $2 ${3:+($3)}"
}

finish() {
  echo
  "$PY" "$REPO/bench/cuda_summary.py" "$STEPS" "$@"
  local rc=$?
  echo "(log and outputs in $WORK; $(( $(date +%s) - T0 )) s in all)" >&2
  exit $rc
}

# --- machine ---------------------------------------------------------------------------------------------------
TORCH_PROBE='
import platform, torch
cuda = torch.cuda.is_available()
print(torch.__version__, torch.__file__, int(cuda), torch.cuda.device_count() if cuda else 0, torch.version.cuda,
      platform.python_version(), torch.cuda.get_device_name(0) if cuda else "-", sep="\t")'
IFS=$'\t' read -r TORCH_VERSION TORCH_FILE HAS_CUDA N_GPUS CUDA_VERSION PY_VERSION GPU_NAME \
  < <("$PY" -c "$TORCH_PROBE" 2>/dev/null)
if [[ -z "${TORCH_VERSION:-}" ]]; then
  step machine FAIL "$PY cannot import torch"
  finish
fi
step machine INFO "Python $PY_VERSION, torch $TORCH_VERSION, CUDA $CUDA_VERSION, $N_GPUS GPU(s): $GPU_NAME"

# --- install ---------------------------------------------------------------------------------------------------
if [[ $INSTALL == 1 ]]; then
  SITE=$WORK/site
  mapfile -t WHLS < <(ls "$WHEELS"/*.whl 2>/dev/null | grep -v '/setuptools-')
  if [[ ${#WHLS[@]} == 0 ]]; then
    step install FAIL "no wheels in $WHEELS: run bench/cuda_wheels.sh where PyPI is reachable and carry bench/wheels"
    finish
  fi
  # pip sees only the wheels folder: no config file, no PIP_* variable (a find-links or constraints set there)
  mapfile -t NO_PIP_ENV < <(env | sed -n 's/^\(PIP_[A-Za-z0-9_]*\)=.*/-u\n\1/p')
  PIP=(env ${NO_PIP_ENV[@]+"${NO_PIP_ENV[@]}"} PIP_CONFIG_FILE=/dev/null
       "$PY" -m pip --disable-pip-version-check --no-input install --no-index --find-links "$WHEELS" --no-deps
       --target "$SITE")
  if ! "$PY" -m pip --version > /dev/null 2>&1; then
    # no pip on this Python: a wheel is a zip of what goes into site-packages, so unpack them (no console scripts,
    # none needed: everything runs as `python -m`); flanlab is the checkout itself, first on PYTHONPATH
    HOW="pip missing: ${#WHLS[@]} wheels unpacked into $SITE, flanlab from the checkout"
    for whl in "${WHLS[@]}"; do
      "$PY" -m zipfile -e "$whl" "$SITE" >> "$WORK/install.log" 2>&1 \
        || { step install FAIL "$HOW: unpacking $whl failed"; finish; }
    done
  elif "${PIP[@]}" "${WHLS[@]}" > "$WORK/install.log" 2>&1 \
       && "${PIP[@]}" --upgrade "$REPO" >> "$WORK/install.log" 2>&1; then
    HOW="${#WHLS[@]} wheels and flanlab (pip --no-deps) into $SITE"
  else
    step install FAIL "pip failed: $(tail -n 3 "$WORK/install.log" | tr '\n\t' '  ')"
    finish
  fi
  export PYTHONPATH=$REPO:$SITE${PYTHONPATH:+:$PYTHONPATH}
  IFS=$'\t' read -r AFTER_VERSION AFTER_FILE _ < <("$PY" -c "$TORCH_PROBE" 2>/dev/null)
  if [[ "${AFTER_VERSION:-}" != "$TORCH_VERSION" || "${AFTER_FILE:-}" != "$TORCH_FILE" || -e $SITE/torch ]]; then
    step install FAIL "torch changed: $TORCH_VERSION ($TORCH_FILE) -> ${AFTER_VERSION:-none} (${AFTER_FILE:-})"
    finish
  fi
  step install PASS "$HOW; torch $TORCH_VERSION unchanged"
else
  export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
fi
# what the checks need (without it nothing runs), then what only some of flanlab needs (datasets: hub sources; gguf:
# the SmolLM2 preset), reported but not blocking
IMPORT_PROBE=$(cat <<'EOF'
import importlib, sys
found, missing = [], []
for name in sys.argv[1:]:
    try:
        found.append(f"{name} {getattr(importlib.import_module(name), '__version__', '')}".strip())
    except Exception as e:
        missing.append(f"{name} ({type(e).__name__}: {(str(e).splitlines() or [''])[0]})")
print(("FAIL\tmissing: " + "; ".join(missing) + "; found: " if missing else "PASS\t") + ", ".join(found))
EOF
)
IFS=$'\t' read -r STATUS DETAIL < <("$PY" -c "$IMPORT_PROBE" flanlab pytest transformers accelerate peft safetensors 2>&1)
step imports "${STATUS:-FAIL}" "${DETAIL:-the import probe did not run}"
[[ ${STATUS:-FAIL} == PASS ]] || finish
IFS=$'\t' read -r STATUS DETAIL < <("$PY" -c "$IMPORT_PROBE" datasets gguf 2>&1)
step "imports (datasets, gguf)" "${STATUS:-FAIL}" "${DETAIL:-the import probe did not run}"

# --- the tests marked cuda ---------------------------------------------------------------------------------------
JUNITS=("$WORK/cuda.xml")
# verbose (-v): a line per finished test, which the summary reads if the timeout kills pytest before its report
timeout 250 "$PY" -m pytest -m cuda tests/test_cuda.py -v -rA -p no:cacheprovider --junitxml "$WORK/cuda.xml" \
  > "$WORK/cuda.log" 2>&1
echo "[cuda_check] pytest -m cuda: exit $? (log: $WORK/cuda.log)"
grep -E '^(PASSED|FAILED|ERROR|SKIPPED)|largest|agreement|^=+ .*(passed|failed|skipped)' "$WORK/cuda.log" | tail -n 60

if [[ $HAS_CUDA != 1 ]]; then
  step "gpu checks" SKIP "no CUDA: skipped (torch.cuda.is_available() is False)"
  if [[ ${CUDA_CHECK_CPU_HALF:-1} != 0 ]]; then
    JUNITS+=("$WORK/cpu.xml")
    timeout 600 "$PY" -m pytest tests/test_cuda.py -m "not cuda" -k "not check_script" -v -rA -p no:cacheprovider \
      --junitxml "$WORK/cpu.xml" > "$WORK/cpu.log" 2>&1
    echo "[cuda_check] the CPU half: exit $? (log: $WORK/cpu.log)"
  fi
  finish "${JUNITS[@]}"
fi

# --- end to end: the demo on CUDA ----------------------------------------------------------------------------------
DEMO=$WORK/demo
if timeout 110 "$PY" -m flanlab.cli demo model=tiny-llama output_dir="$DEMO" > "$WORK/demo.log" 2>&1 \
   && [[ -s $DEMO/report/index.html ]]; then
  # the devices the demo ran on: its training (train/summary.json) and its evaluation (before/results.json)
  DEVICES=$("$PY" - "$DEMO" <<'EOF' 2>&1 | tail -n 1
import json, sys
from pathlib import Path
def devices(o):
    if isinstance(o, dict):
        for k, v in o.items():
            yield from ([v] if k == "device" and isinstance(v, str) else devices(v))
    elif isinstance(o, list):
        for v in o:
            yield from devices(v)
demo = Path(sys.argv[1])
train = json.loads((demo / "train" / "summary.json").read_text()).get("device", "not-recorded")
evaluation = ",".join(sorted(set(devices(json.loads((demo / "before" / "results.json").read_text()).get("model")))))
print(train, evaluation or "not-recorded")
EOF
)
  read -r TRAIN_DEVICE EVAL_DEVICE <<< "$DEVICES"
  STAGES=$(sed -n 's/.*✓ [0-9]\/5 \([a-z]*\).*(\([0-9.]* s\))$/\1 \2/p' "$WORK/demo.log" | paste -sd, -)
  if [[ $TRAIN_DEVICE == cuda* && $EVAL_DEVICE == cuda* ]]; then
    step demo PASS "flanlab demo model=tiny-llama ran to its report on CUDA ($DEMO/report/index.html); stages $STAGES"
  else
    step demo FAIL "the demo ran, but not on CUDA: training on ${TRAIN_DEVICE:-?}, evaluation on ${EVAL_DEVICE:-?} ($DEVICES)"
  fi
else
  step demo FAIL "exit or missing report (timeout 110 s): $(grep -v Warning "$WORK/demo.log" | tail -n 2 | tr '\n\t' '  ')"
fi

# --- speed, for the record -----------------------------------------------------------------------------------------
timeout 40 "$PY" bench/cuda_speed.py "$STEPS" --device cuda --work "$WORK/speed" > "$WORK/speed.log" 2>&1 \
  || step speed FAIL "exit $? (timeout 40 s?): $(grep -v Warning "$WORK/speed.log" | tail -n 2 | tr '\n\t' '  ')"

finish "${JUNITS[@]}"
