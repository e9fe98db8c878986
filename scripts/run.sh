#!/usr/bin/env bash
# Set up and run the whole appliance on this machine: broker, hub and one edge (`gridwarden demo`).
#   bash scripts/run.sh                          # synthetic street scene, no camera or model needed
#   bash scripts/run.sh --config configs/edge.example.yaml   # your cameras and model
# Installs what it needs (Debian's mosquitto, a .venv with Gridwarden) from the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  echo "[run] installing mosquitto"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends mosquitto >/dev/null
fi
bash scripts/bootstrap.sh
exec .venv/bin/gridwarden demo "$@"
