#!/usr/bin/env bash
# bench/cuda_wheels.sh: fetch, on a machine that reaches PyPI, the wheels that bench/cuda_check.sh installs on an
# offline GPU machine.
#
# usage: bench/cuda_wheels.sh [DEST]            (DEST default: bench/wheels, ignored by git; carry it to the GPU machine)
#   PYVER=3.12      the GPU machine's Python (major.minor); wheels are for CPython PYVER, manylinux x86_64
#   PIP="python3 -m pip"   the pip that downloads (default: .venv/bin/python -m pip, else python3 -m pip)
#
# The GPU machine already has its CUDA torch, transformers, accelerate, peft, safetensors, pyarrow, matplotlib,
# tensorboard, pyyaml, tqdm and xxhash, with their own dependencies. What flanlab's tests need beyond them (found by
# walking the installed dependency graph of that list against datasets, gguf and pytest; see the notes below):
#   datasets  dill  multiprocess  pandas        datasets, imported lazily by flanlab's hub sources
#   gguf  requests  urllib3  charset-normalizer  certifi    reading the SmolLM2 GGUF (requests: gguf's declared dependency)
#   pytest  pluggy  iniconfig                    the tests
#   setuptools                                   the build backend of `pip install --no-deps .` (offline build)
# Each is fetched with --no-deps at the version this project's .venv tests with: nothing else is pulled in, and
# never torch. The total is printed at the end; it must stay well under the 64 MiB a GPU session can carry.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-bench/wheels}
PYVER=${PYVER:-3.12}
if [[ -z "${PIP:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PIP=".venv/bin/python -m pip"; else PIP="python3 -m pip"; fi
fi

# name==version: the versions installed in this project's .venv (flanlab's tests run against them)
WHEELS=(
  datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 pandas==3.1.1
  gguf==0.19.0 requests==2.34.2 urllib3==2.8.0 charset-normalizer==3.5.3 certifi==2026.10.19.post1
  pytest==9.2.0 pluggy==1.7.0 iniconfig==2.3.1
  setuptools==84.2.1
)

mkdir -p "$DEST"
for spec in "${WHEELS[@]}"; do
  $PIP download --disable-pip-version-check --quiet --no-deps --only-binary=:all: --dest "$DEST" \
    --python-version "$PYVER" --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_28_x86_64 "$spec"
done
count=$(ls "$DEST"/*.whl | wc -l)
if ls "$DEST" | grep -qi '^torch-'; then echo "cuda_wheels: a torch wheel is in $DEST: remove it" >&2; exit 1; fi
echo "cuda_wheels: $count wheels for CPython $PYVER in $DEST, $(du -sh "$DEST" | cut -f1) in all"
