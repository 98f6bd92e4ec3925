#!/usr/bin/env bash
# Set up everything (idempotent) and run the whole test suite, slow tests included.
#   scripts/test.sh [pytest args...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
source scripts/setup.sh --models --postgres
echo "[sipdo test] running the test suite"
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
