#!/usr/bin/env bash
# Start (idempotently) a throwaway PostgreSQL cluster for the store tests and
# export its SQLAlchemy URL as SIPDO_TEST_POSTGRES_URL.
#
#   scripts/postgres.sh            install if needed, init, start; print the URL
#   source scripts/postgres.sh     same, and the variable stays exported in your shell
#   scripts/postgres.sh stop       stop the cluster (the data directory is kept)
#
# Settings (environment): SIPDO_PG_DIR (default /tmp/sipdo-pg: data, socket and log),
# SIPDO_PG_PORT (default 55432). The cluster listens on 127.0.0.1 and on a unix socket
# in SIPDO_PG_DIR, trusts local connections (test data only: never use it for real
# data) and runs with fsync off. As root, the server runs as the `postgres` user.
# The URL is the only line on stdout, so `url=$(scripts/postgres.sh)` works.

_sipdo_pg_main() {
  local dir="${SIPDO_PG_DIR:-/tmp/sipdo-pg}"
  local port="${SIPDO_PG_PORT:-55432}"
  local data="$dir/data" log="$dir/server.log" db="sipdo_test"
  local say_prefix="[sipdo postgres]"
  local bin as=()

  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "$say_prefix installing Debian's postgresql" >&2
    local sudo=""
    [ "$(id -u)" != 0 ] && sudo="sudo"
    $sudo apt-get update -q >&2 || return 1
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q postgresql >&2 || return 1
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
    [ -x "$bin/initdb" ] || { echo "$say_prefix no initdb after install" >&2; return 1; }
  fi
  # PostgreSQL refuses to run as root: run the server as `postgres` then.
  if [ "$(id -u)" = 0 ]; then
    as=(runuser -u postgres --)
  fi

  if [ "${1:-}" = "stop" ]; then
    if [ -f "$data/postmaster.pid" ]; then
      "${as[@]}" "$bin/pg_ctl" -D "$data" -m fast -w stop >&2 || return 1
    fi
    echo "$say_prefix stopped" >&2
    return 0
  fi

  mkdir -p "$dir" || return 1
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
  if [ ! -f "$data/PG_VERSION" ]; then
    echo "$say_prefix initdb in $data" >&2
    "${as[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-sync \
      >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
  fi
  if "${as[@]}" "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    echo "$say_prefix already running on port $port" >&2
  else
    echo "$say_prefix starting on 127.0.0.1:$port (log: $log)" >&2
    "${as[@]}" "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off \
-c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      start >&2 || { tail -20 "$log" >&2; return 1; }
  fi
  local psql=("${as[@]}" "$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -tAq)
  if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
    "${psql[@]}" -c "CREATE DATABASE $db" >&2 || return 1
  fi
  SIPDO_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$port/$db"
  export SIPDO_TEST_POSTGRES_URL
  echo "$SIPDO_TEST_POSTGRES_URL"
}

# Sourced: keep the export, never `exit` the caller's shell. Executed: exit with the status.
if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  # Only a literal "stop" is ours: a sourcing script passes its own arguments along.
  if [ "${1:-}" = "stop" ]; then _sipdo_pg_main stop; else _sipdo_pg_main; fi
else
  set -euo pipefail
  _sipdo_pg_main "$@"
fi
