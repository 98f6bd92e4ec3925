#!/usr/bin/env bash
# Set up everything (idempotent) and run the SIPDO loop on the embedded defaults:
# shipped seed tasks, the default sandbox, SQLite store, local models, and a
# small budget (one iteration; later options override it, e.g. --iterations 3).
#   scripts/demo.sh [extra `sipdo run` options...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh --models
echo "[sipdo demo] running: sipdo run --iterations 1 $*"
exec .venv/bin/sipdo run --iterations 1 "$@"
