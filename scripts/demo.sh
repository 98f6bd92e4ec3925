#!/usr/bin/env bash
# Set up everything (idempotent) and run the SIPDO loop on the embedded defaults:
# shipped seed tasks, the default sandbox, SQLite store, local models, and a
# small budget: one iteration, one generated task, up to two prompt candidates.
# Later options override it, e.g. scripts/demo.sh --iterations 3.
#   scripts/demo.sh [extra `sipdo run` options...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh --models
DEMO=(--iterations 1 --tasks-per-iteration 1 --max-refinements 2)
echo "[sipdo demo] running: sipdo run ${DEMO[*]} $*"
exec .venv/bin/sipdo run "${DEMO[@]}" "$@"
