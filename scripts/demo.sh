#!/usr/bin/env bash
# Set up if needed, then run the demo: scripts/demo.sh [demo options]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/schemaless demo "$@"
