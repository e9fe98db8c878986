#!/usr/bin/env bash
# Create .venv (if needed) and install Gridwarden with its dev tools and the optional OpenVINO
# backend into it (so CI tests both inference runtimes).
# Safe to run again: pip only installs what is missing. Works offline from the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[bootstrap] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=.venv/.gridwarden-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "[bootstrap] installing gridwarden and its dependencies into .venv"
  .venv/bin/pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/pip install -q --disable-pip-version-check -e ".[dev,openvino]" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import gridwarden, cv2, onnxruntime, av, paho.mqtt" || { echo "[bootstrap] install failed" >&2; exit 1; }
  touch "$stamp"
fi
# The city pages' map library (Leaflet) from the npm registry, served by the hub itself.
bash scripts/web-vendor.sh || echo "[bootstrap] warning: no Leaflet; the map page will say so" >&2
