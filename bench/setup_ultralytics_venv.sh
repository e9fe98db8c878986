#!/usr/bin/env bash
# A separate virtualenv for benchmarks that compare against ultralytics (which needs torch).
# The edge runtime never imports ultralytics or torch; only bench/ and `gridwarden models export` do.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-bench/bin/python ]; then python3 -m venv .venv-bench; fi
# torch 2.14.1 + torchvision 0.29.1 is a pair that imports together (a CPU run is all we need).
.venv-bench/bin/pip install -q torch==2.14.1 torchvision==0.29.1
# supervision + trackers: bench_vs_supervision.py scripts the integrator recipe (PolygonZone,
# InferenceSlicer; ByteTrack now lives in Roboflow's trackers package, not in supervision 0.30+).
.venv-bench/bin/pip install -q ultralytics lap onnx supervision trackers -e .
