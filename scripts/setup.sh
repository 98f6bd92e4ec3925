#!/usr/bin/env bash
# Idempotent set-up of everything sipdo needs on a Debian machine:
# system packages, the Docker engine, a virtualenv with the package, the
# offline sandbox image, and (optionally) the local models and PostgreSQL.
#
#   scripts/setup.sh [--models] [--postgres] [--train] [--ray]
#
# --train (implied by CI=true) adds the `train` extra for `sipdo
# train-prompt-model`: torch's CPU build (~750 MB installed, ~20 s from a local
# wheel) installed first, so pip never picks the multi-GB CUDA build.
# --ray (implied by CI=true) adds the `ray` extra for `sipdo verify --engine
# ray` and its cluster tests (measured: 28 s to install, ~30 s to start a head).
#
# Every step says what it does and is skipped when already done.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WANT_MODELS=0
WANT_POSTGRES=0
WANT_TRAIN=0
WANT_RAY=0
[ "${CI:-}" = true ] && WANT_TRAIN=1 && WANT_RAY=1
for arg in "$@"; do
  case "$arg" in
    --models) WANT_MODELS=1 ;;
    --postgres) WANT_POSTGRES=1 ;;
    --train) WANT_TRAIN=1 ;;
    --ray) WANT_RAY=1 ;;
    *) echo "setup: unknown option $arg" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m[sipdo setup]\033[0m %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    say "not root and no sudo: system packages and dockerd must already be there"; fi
fi

# 1. System packages ---------------------------------------------------------
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
# Headless Chromium: the run report's browser tests (sipdo report) open the page in it.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ "$WANT_POSTGRES" = 1 ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
if [ "${#need[@]}" -gt 0 ]; then
  say "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
else
  say "Debian packages present (docker.io, debootstrap, chromium$([ "$WANT_POSTGRES" = 1 ] && echo ', postgresql'))"
fi

# 2. Docker engine -----------------------------------------------------------
if docker info >/dev/null 2>&1; then
  say "Docker engine answers"
else
  say "starting dockerd in the background (log: /var/log/sipdo-dockerd.log)"
  $SUDO sh -c 'nohup dockerd > /var/log/sipdo-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if docker info >/dev/null 2>&1; then say "Docker engine is up"; else
    say "WARNING: dockerd did not answer within 60 s; sipdo will use the process sandbox"
    tail -5 /var/log/sipdo-dockerd.log || true
  fi
fi

# 3. Virtualenv and package ---------------------------------------------------
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  say "creating virtualenv .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
extras="dev"
[ "$WANT_MODELS" = 1 ] && extras="dev,local"
[ "$WANT_TRAIN" = 1 ] && extras="$extras,train"
[ "$WANT_RAY" = 1 ] && extras="$extras,ray"
stamp=".venv/.sipdo-installed"
want="$(sha256sum pyproject.toml | cut -c1-16) $extras"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  say "installing sipdo[$extras] into .venv (llama-cpp-python builds from source the first time: ~8 min)"
  .venv/bin/pip install -q --upgrade pip
  if [ "$WANT_TRAIN" = 1 ] && ! .venv/bin/python -c 'import torch' 2>/dev/null; then
    say "installing torch's CPU build (the train extra)"
    .venv/bin/pip install -q "torch==2.13.0+cpu" \
      || .venv/bin/pip install -q torch --index-url https://download.pytorch.org/whl/cpu
  fi
  .venv/bin/pip install -q -e ".[$extras]"
  echo "$want" > "$stamp"
else
  say "sipdo[$extras] already installed in .venv"
fi

# 4. Sandbox image (offline, from a Debian rootfs) -------------------------------
if docker info >/dev/null 2>&1; then
  say "sandbox image: building offline if missing (~70 s the first time)"
  .venv/bin/python -m sipdo.sandbox.image build
fi

# 5. Local models ------------------------------------------------------------------
if [ "$WANT_MODELS" = 1 ]; then
  say "local models: installing and joining if missing"
  PYTHON=.venv/bin/python bash scripts/models.sh qwen2.5-coder-0.5b qwen2.5-coder-1.5b
fi

# 6. PostgreSQL for the store tests ---------------------------------------------
if [ "$WANT_POSTGRES" = 1 ]; then
  say "PostgreSQL: starting a throwaway cluster for the tests"
  # shellcheck disable=SC1091
  source scripts/postgres.sh
fi
say "done"
