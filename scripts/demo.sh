#!/usr/bin/env bash
# Set up everything (idempotent) and run the SIPDO loop on the embedded defaults:
# shipped seed tasks, the default sandbox, SQLite store, local models, and a
# small budget: one iteration, one generated task, up to two prompt candidates.
# The initial prompt, and any prompt the loop promotes, is graded on the first
# 20 HumanEval problems, which the loop never sees (--holdout humaneval:20); the
# demo ends with the held-out pass@1 before -> after and writes the run's HTML
# report, printing its path.
# Later options override the budget, e.g. scripts/demo.sh --iterations 3;
# scripts/demo.sh --resume RUN_ID continues an interrupted demo.
#   scripts/demo.sh [extra `sipdo run` options...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh --models

RUN_ID=""
DB=()
args=("$@")
for i in "${!args[@]}"; do
  case "${args[$i]}" in
    --resume) RUN_ID="${args[$((i + 1))]:-}" ;;
    --resume=*) RUN_ID="${args[$i]#--resume=}" ;;
    --db) DB=(--db "${args[$((i + 1))]:-}") ;;
    --db=*) DB=("${args[$i]}") ;;
  esac
done
if [[ -n "$RUN_ID" ]]; then
  DEMO=()  # a resumed run keeps the settings it was started with
else
  RUN_ID="demo-$(date -u +%Y%m%d-%H%M%S)"
  DEMO=(--run-id "$RUN_ID" --iterations 1 --tasks-per-iteration 1 --max-refinements 2
        --holdout humaneval:20)
fi
echo "[sipdo demo] running: sipdo run ${DEMO[*]} $*"
.venv/bin/sipdo run "${DEMO[@]}" "$@"

HOME_DIR="$(.venv/bin/python -c 'from sipdo.store import sipdo_home; print(sipdo_home())')"
REPORT="$HOME_DIR/reports/$RUN_ID.html"
mkdir -p "$(dirname "$REPORT")"
.venv/bin/sipdo report "$RUN_ID" -o "$REPORT" "${DB[@]}"
echo "[sipdo demo] held-out pass@1 (initial prompt, then each promoted one) is printed above;"
echo "[sipdo demo] report: $REPORT   (open it in a browser; details: sipdo show $RUN_ID)"
