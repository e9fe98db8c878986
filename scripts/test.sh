#!/usr/bin/env bash
# Set up everything the tests need on this machine and run them (the command CI runs).
#   bash scripts/test.sh            # whole suite, slow end-to-end tests included
#   bash scripts/test.sh -m "not slow" tests/analytics   # extra args go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
bash scripts/bootstrap.sh
export GRIDWARDEN_TEST_PG=${GRIDWARDEN_TEST_PG:-$(bash scripts/postgres.sh)}
echo "[test] PostgreSQL for tests: $GRIDWARDEN_TEST_PG"
.venv/bin/ruff check gridwarden tests bench
.venv/bin/ruff format --check gridwarden tests bench
.venv/bin/mypy gridwarden
.venv/bin/python -m pytest "$@"
