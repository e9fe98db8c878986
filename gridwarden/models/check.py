"""``gridwarden models check``: what the detector makes of a model file, and how fast it runs here.

Before a model goes onto an edge box someone has to know: which layout the detector decided on,
which class names it will use, the input size, which execution provider it will really get (a
CUDA build without its libraries silently runs on the CPU), whether batching works, how many
milliseconds a frame costs on *this* machine, and whether a reviewed card (licence, provenance)
matches the file's bytes. This module answers all of that from the same :class:`Detector` the
service uses, so the answer cannot differ from what production does.

Example::

    report = check_model("../shared/models/yolox_nano_coco.onnx", runs=20)
    print(format_report(report))
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gridwarden.models.cards import ModelCard, find_card_by_sha256, sha256_file

#: A typical camera frame size; the letterbox resize is part of the per-frame cost.
DEFAULT_FRAME_SIZE = (1280, 720)


@dataclass(frozen=True, slots=True)
class Timing:
    """Milliseconds per frame over ``runs`` calls after ``warmup`` untimed ones."""

    runs: int
    warmup: int
    p50_ms: float
    p95_ms: float
    mean_ms: float

    @classmethod
    def from_seconds(cls, seconds: list[float], warmup: int) -> Timing:
        ms = np.asarray(seconds, dtype=np.float64) * 1000.0
        return cls(
            runs=len(ms),
            warmup=warmup,
            p50_ms=round(float(np.percentile(ms, 50)), 2),
            p95_ms=round(float(np.percentile(ms, 95)), 2),
            mean_ms=round(float(ms.mean()), 2),
        )


@dataclass(slots=True)
class CardMatch:
    """The card found by the file's sha256 (or none), and whether its facts agree with the model."""

    sha256: str
    card: str | None = None
    licence: str | None = None
    source: str | None = None
    mismatches: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ModelReport:
    model_path: str
    size_bytes: int
    layout: str
    boxes_encoded: bool
    num_classes: int
    class_names: list[str]
    input_size: list[int]
    input_dtype: str
    providers_available: list[str]
    provider: str
    backend: str
    backend_reason: str
    supports_batch: bool
    frame_size: list[int]
    detect: Timing
    card: CardMatch

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_model(
    model_path: str | Path,
    *,
    runs: int = 50,
    warmup: int = 5,
    input_size: int | None = None,
    providers: list[str] | None = None,
    frame: np.ndarray | None = None,
    backend: str = "auto",
) -> ModelReport:
    """Load the model as the service would and measure ``detect_one`` (preprocess + inference +
    decode + NMS) on ``frame`` (default: a synthetic 1280x720 picture)."""
    from gridwarden.edge.analytics.detector import Detector

    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got runs={runs} warmup={warmup}")
    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    detector = Detector(path, input_size=input_size, providers=providers, backend=backend)
    info = detector.describe()
    image = synthetic_frame(*DEFAULT_FRAME_SIZE) if frame is None else frame
    timing = time_detect(detector, image, runs=runs, warmup=warmup)
    return ModelReport(
        model_path=str(path),
        size_bytes=path.stat().st_size,
        layout=detector.layout,
        boxes_encoded=bool(info["boxes_encoded"]),
        num_classes=len(detector.class_names),
        class_names=list(detector.class_names),
        input_size=list(detector.input_size),
        input_dtype=str(info["input_dtype"]),
        providers_available=list(info["providers_available"]),
        provider=detector.provider,
        backend=detector.backend,
        backend_reason=detector.backend_reason,
        supports_batch=detector.supports_batch,
        frame_size=[int(image.shape[1]), int(image.shape[0])],
        detect=timing,
        card=match_card(path, detector),
    )


def time_detect(detector: Any, image: np.ndarray, *, runs: int, warmup: int) -> Timing:
    """Warm-up calls first (allocator, thread pool and kernel selection settle), then timed ones."""
    for _ in range(warmup):
        detector.detect_one(image)
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        detector.detect_one(image)
        seconds.append(time.perf_counter() - start)
    return Timing.from_seconds(seconds, warmup)


def match_card(path: Path, detector: Any) -> CardMatch:
    """Find the card by content hash and list every fact in it that the model contradicts."""
    digest = sha256_file(path)
    card: ModelCard | None = find_card_by_sha256(digest)
    if card is None:
        return CardMatch(sha256=digest)
    mismatches = []
    if card.layout != detector.layout:
        mismatches.append(f"layout: card says {card.layout}, model is {detector.layout}")
    if (card.input_size, card.input_size) != tuple(detector.input_size):
        mismatches.append(f"input_size: card says {card.input_size}, model is {detector.input_size}")
    if card.class_names != list(detector.class_names):
        mismatches.append(
            f"classes: card has {card.num_classes} names, the detector uses {len(detector.class_names)} "
            "that differ"
        )
    return CardMatch(
        sha256=digest, card=card.name, licence=card.licence, source=card.source, mismatches=mismatches
    )


def synthetic_frame(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A deterministic picture with smooth gradients and a few blocks: something to resize and
    run, not to detect in. Pure noise would be unrepresentative (no structure) and a flat grey
    frame can let a runtime skip work."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([(x * 255 // max(1, width - 1)), (y * 255 // max(1, height - 1)), (x + y) % 256], axis=2)
    image = image.astype(np.uint8)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width - 64)), int(rng.integers(0, height - 64))
        image[y0 : y0 + int(rng.integers(32, 160)), x0 : x0 + int(rng.integers(32, 240))] = rng.integers(
            0, 256, 3, dtype=np.uint8
        )
    return image


def format_report(report: ModelReport, *, max_names: int = 8) -> str:
    """Human-readable report, one fact per line."""
    names = ", ".join(report.class_names[:max_names])
    if report.num_classes > max_names:
        names += f", ... (+{report.num_classes - max_names} more)"
    others = [p for p in report.providers_available if p != report.provider]
    card = report.card
    if card.card is None:
        card_line = "none matches this file's sha256 (unknown provenance and licence: write a card)"
    elif card.mismatches:
        card_line = f"{card.card} ({card.licence}) matches the sha256, BUT: " + "; ".join(card.mismatches)
    else:
        card_line = f"{card.card} ({card.licence}) matches the sha256 and the model"
    w, h = report.input_size
    fw, fh = report.frame_size
    lines = [
        f"model:      {report.model_path} ({report.size_bytes / 1e6:.1f} MB)",
        f"layout:     {report.layout}" + (" (raw grid boxes, decoded here)" if report.boxes_encoded else ""),
        f"classes:    {report.num_classes}: {names}",
        f"input:      {w}x{h} {report.input_dtype}",
        f"backend:    {report.backend_reason}",
        f"providers:  using {report.provider}"
        + (f" (also installed: {', '.join(others)})" if others else ""),
        f"batch:      {'dynamic (frames from several cameras run together)' if report.supports_batch else '1 (fixed)'}",
        f"speed:      {report.detect.p50_ms:.1f} ms/frame p50, {report.detect.p95_ms:.1f} ms p95 "
        f"({report.detect.runs} runs after {report.detect.warmup} warm-up, {fw}x{fh} frame, "
        "preprocess + inference + NMS)",
        f"card:       {card_line}",
        f"sha256:     {card.sha256}",
    ]
    return "\n".join(lines)
