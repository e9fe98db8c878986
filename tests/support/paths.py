"""Where the shared test assets live (read in place, never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("GRIDWARDEN_SHARED", REPO_ROOT.parent / "shared")).resolve()
YOLOX_NANO = SHARED / "models" / "yolox_nano_coco.onnx"
YOLO11N_UNTRAINED = SHARED / "models" / "yolo11n_untrained.onnx"
CAR_CLIP = SHARED / "media" / "car-detection.mp4"
PERSON_CLIP = SHARED / "media" / "one-by-one-person-detection.mp4"
