#!/usr/bin/env bash
# Run the benchmarks from the repository root: bash bench/run.sh [--only fanout,...] [...]
# Raises the open-file limit for the servers and load scripts, then hands over to `python -m bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec .venv/bin/python -m bench "$@"
