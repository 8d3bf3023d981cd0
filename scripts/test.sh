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
# Django settings are configured once per process: the old Django layer's tests and the new
# backend's run in two pytest sessions until the backend replaces the old layer (issue 10).
step .venv/bin/python -m pytest --ignore=tests/django_backend "$@"
step .venv/bin/python -m pytest tests/django_backend "$@"
exit "$status"
