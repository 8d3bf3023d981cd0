#!/usr/bin/env bash
# Lint, type-check and test, as CI does: every step runs, and any failure fails the whole.
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not mysql" -x
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

status=0
step() {
    echo "test: $*"
    "$@" || status=1
}
step .venv/bin/ruff check .
step .venv/bin/ruff format --check .
step .venv/bin/mypy
step .venv/bin/python -m pytest "$@"
exit "$status"
