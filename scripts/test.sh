#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine, then run ruff and pytest.
# - a virtualenv in .venv with PyTorch 2.13.0 (the CPU build; installed first so that no other
#   requirement makes pip fetch a CUDA build) and vimae with its test extras;
# - Debian's Fashion-MNIST (the data tests load the full 60k/10k set from it);
# - Debian's chromium (the report test opens report.html in a headless browser).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq dataset-fashion-mnist >/dev/null
  fi
fi
# Debian's chromium: the report test renders report.html in a headless browser (fails in CI
# without it).
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
python -m pip install -q torch==2.13.0 2>&1 | grep -v "^WARNING: Location" || true
python -m pip install -q -e '.[test]' 2>&1 | grep -v "^WARNING: Location" || true

ruff check src tests benchmarks
ruff format --check src tests benchmarks
python -m pytest -q "$@"
