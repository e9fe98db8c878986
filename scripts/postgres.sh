#!/usr/bin/env bash
# Print a PostgreSQL URL for the tests: the machine's server on 127.0.0.1:5432 when it answers
# with trust auth, otherwise a private cluster started here in var/pg on a free port.
set -euo pipefail
cd "$(dirname "$0")/.."
if psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -Atc "select 1" >/dev/null 2>&1; then
  echo "postgresql://postgres@127.0.0.1:5432/postgres"; exit 0
fi
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
data=$PWD/var/pg/data; port=${GRIDWARDEN_PG_PORT:-55432}
mkdir -p var/pg
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ ! -f "$data/PG_VERSION" ]; then
  [ "$(id -u)" -eq 0 ] && chown postgres var/pg
  as_pg "$bindir/initdb" -D "$data" -U postgres --auth=trust >/dev/null
fi
if ! as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  as_pg "$bindir/pg_ctl" -D "$data" -l "$PWD/var/pg/log" -o "-p $port -k /tmp -c listen_addresses=127.0.0.1" -w start >/dev/null
fi
echo "postgresql://postgres@127.0.0.1:$port/postgres"
