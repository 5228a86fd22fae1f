#!/usr/bin/env bash
# Lint, then the whole test suite. The README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
python3 -m ruff check .
# Every test is bounded, so that a regression that trains or waits for ever fails instead
# of stalling the run. Two processes, each test file in one of them, so that a file's
# shared fixtures (trained checkpoints, batches of tool runs) are made once; the files in
# the order tests/conftest.py gives them (longest first), which xdist would otherwise
# replace by the number of tests in each file.
python3 -m pytest -q --timeout=600 -n 2 --dist loadfile --no-loadscope-reorder tests "$@"
