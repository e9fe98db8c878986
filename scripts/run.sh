#!/usr/bin/env bash
# Set up and run the whole appliance on this machine: broker, hub and one edge (`gridwarden demo`).
#   bash scripts/run.sh                          # synthetic street scene, no camera or model needed
#   bash scripts/run.sh --config configs/edge.example.yaml   # your cameras and model
# Installs what it needs (Debian's mosquitto, a .venv with Gridwarden) from the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
# Mosquitto for the broker; a CJK font so that the console (zh-CN by default) shows Chinese
# characters rather than empty boxes in a browser on this machine.
need=()
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then need+=(mosquitto); fi
if command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=zh 2>/dev/null | head -n1)" ]; then
  need+=(fonts-noto-cjk)
elif ! command -v fc-list >/dev/null 2>&1 && ! dpkg -s fonts-noto-cjk >/dev/null 2>&1; then
  need+=(fonts-noto-cjk)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "[run] installing: ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
bash scripts/bootstrap.sh
exec .venv/bin/gridwarden demo "$@"
