#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine, then run ruff and pytest.
# - Debian's dataset-fashion-mnist (the data tests load the full 60k/10k set from it) and
#   chromium (the report test opens report.html in a headless browser);
# - a virtualenv in .venv with PyTorch 2.13.0 (the CPU build; installed first so that no other
#   requirement makes pip fetch a CUDA build) and vimae with its test extras and the Inception-v3
#   FID network (the inception extra).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

quiet_pip() {  # pip, minus this machine's noise about absent local package folders
  python -m pip install -q "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }
}
[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
quiet_pip --upgrade pip
quiet_pip torch==2.13.0
quiet_pip -e '.[test,inception]'

ruff check src tests benchmarks
ruff format --check src tests benchmarks
python -m pytest -q "$@"
