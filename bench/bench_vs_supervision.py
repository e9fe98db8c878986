"""The `gridwarden eval` scenario set, scored for Gridwarden and for the recipe an integrator
would script with supervision instead, in one process with the same ONNX model.

Run (needs the benchmark virtualenv, which has supervision)::

    bash bench/setup_ultralytics_venv.sh
    .venv-bench/bin/python scripts/build_scenarios.py var/scenarios
    .venv-bench/bin/python bench/bench_vs_supervision.py var/scenarios

Three runs over every scenario of the folder (``--only`` picks some):

* **gridwarden**: :class:`gridwarden.evaluation.runner.ScenarioRunner`, i.e. exactly what
  ``gridwarden eval`` replays (region inference, tracker, occlusion memory, static objects);
* **sv whole**: the supervision recipe. Frames from ``sv.get_video_frames_generator`` at the
  camera's analysis rate (stride = clip fps / analysis_fps), the detector on the whole frame,
  ByteTrack, one ``sv.PolygonZone`` per zone (bottom-centre anchor, as Gridwarden's
  default) and a dwell clock per tracker id and rule: an incident starts when an id of the rule's
  classes has been in the zone ``dwell_s``, and ends once that id has been out of the zone (or
  unseen) for the rule's ``end_grace_s``. A static-object rule becomes "any COCO class dwelling
  there": supervision has no class-agnostic path;
* **sv sliced**: the same, with the detector run through ``sv.InferenceSlicer`` tiles
  (``--slice`` px square, ``--overlap`` px) for small objects.

A stride samples a 12.5 fps clip at 2.08 fps where Gridwarden samples 2.0, hence "CPU ms/frame"
(detector CPU per analysed frame) beside the totals. Gridwarden's detector runs on fewer frames
than it analyses (its motion gate); the recipe's on every one.

All three use the same yolox_nano ONNX model through onnxruntime (each scenario configuration is
copied with ``model.backend: onnxruntime``, so OpenVINO is never picked) with the configuration's
input size and thresholds; the recipe calls Gridwarden's ``Detector`` for pre/post-processing so
that the model's boxes are the same and only the pipeline differs.

The tracker: supervision 0.30+ no longer ships ``sv.ByteTrack`` (deprecated in 0.28); its docs
send users to Roboflow's ``trackers`` package, whose ``ByteTrackTracker`` takes and returns
``sv.Detections``. It gets
Gridwarden's tracker settings (``lost_timeout_s``, ``new_track_threshold``, ``high_threshold``,
``min_hits``): the package's defaults (activation 0.7) would start no track on cars seen from
above (0.4-0.7 with yolox_nano), and the comparison is about the pipeline, not the tuning.

The recipe only produces incident start/end lists per zone; both sides are scored by the
project's own code (:func:`gridwarden.evaluation.scoring.score_zone`) and printed with the
``gridwarden eval`` table, then side by side with the detector CPU seconds of each run
(``time.process_time`` around each model call: all threads of this process).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gridwarden.edge.analytics.detector import Detector, resolve_classes  # noqa: E402
from gridwarden.edge.analytics.model_loader import build_detector  # noqa: E402
from gridwarden.edge.config import EdgeConfig, RuleConfig, load_edge_config  # noqa: E402
from gridwarden.edge.replay import pick_camera  # noqa: E402
from gridwarden.evaluation.report import format_table, to_json  # noqa: E402
from gridwarden.evaluation.runner import ScenarioResult, ScenarioRunner  # noqa: E402
from gridwarden.evaluation.scoring import ObservedIncident, score_zone  # noqa: E402
from gridwarden.evaluation.truth import find_scenarios, load_scenario  # noqa: E402


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f} (1/5 min, {os.cpu_count()} cores)"


# ---------------------------------------------------------------- scenario copies pinned to onnxruntime
def pinned_scenarios(paths: Sequence[Path], work: Path) -> list[Path]:
    """Copy each scenario and its edge configuration into ``work`` with ``model.backend:
    onnxruntime`` and absolute clip/model paths; the ground truth is left as written."""
    out = []
    for path in paths:
        scenario = load_scenario(path)
        config = yaml.safe_load(scenario.config_path().read_text())
        if config.get("model"):
            model_path = Path(config["model"]["path"])
            if not model_path.is_absolute():
                model_path = scenario.config_path().parent / model_path
            config["model"].update(path=str(model_path.resolve()), backend="onnxruntime")
        config_copy = work / f"{scenario.name}.edge.yaml"
        config_copy.write_text(yaml.safe_dump(config, sort_keys=False))
        truth = yaml.safe_load(path.read_text())
        truth.update(clip=str(scenario.clip_path().resolve()), config=config_copy.name)
        copy = work / path.name
        copy.write_text(yaml.safe_dump(truth, sort_keys=False))
        out.append(copy)
    return out


# ---------------------------------------------------------------- the supervision recipe
@dataclass
class DwellClock:
    """Time in zone per tracker id, the way supervision's time-in-zone example counts it."""

    zone: str
    rule: str
    class_ids: set[int] | None  # None: any class
    dwell_s: float
    end_grace_s: float
    first_in: dict[int, float] = field(default_factory=dict)
    last_in: dict[int, float] = field(default_factory=dict)
    open: dict[int, tuple[str, float]] = field(default_factory=dict)
    incidents: list[ObservedIncident] = field(default_factory=list)
    _count: int = 0

    def update(self, tracker_ids: np.ndarray, class_ids: np.ndarray, in_zone: np.ndarray, t: float) -> None:
        wanted = in_zone if self.class_ids is None else in_zone & np.isin(class_ids, list(self.class_ids))
        present = {int(i) for i in tracker_ids[wanted] if i >= 0}  # -1: not (yet) a track
        for tid in present:
            self.first_in.setdefault(tid, t)
            self.last_in[tid] = t
            if tid not in self.open and t - self.first_in[tid] >= self.dwell_s:
                self._count += 1
                self.open[tid] = (f"{self.zone}-{self.rule}-{self._count}", t)
        for tid in [
            i for i, last in self.last_in.items() if i not in present and t - last >= self.end_grace_s
        ]:
            if tid in self.open:
                incident_id, start = self.open.pop(tid)
                self.incidents.append(ObservedIncident(incident_id, self.zone, self.rule, start, t))
            del self.first_in[tid], self.last_in[tid]

    def finish(self) -> list[ObservedIncident]:
        """Every incident, those still open at the clip's end with ``end=None``."""
        still_open = [ObservedIncident(i, self.zone, self.rule, s, None) for i, s in self.open.values()]
        return sorted(self.incidents + still_open, key=lambda o: o.start)


def rule_classes(rule: RuleConfig, config: EdgeConfig, class_names: list[str]) -> set[int] | None:
    if rule.type == "static_object":
        return None  # no class-agnostic path in the recipe: any class that dwells there
    return resolve_classes(rule.classes, class_names, config.class_groups or None)


class SupervisionRecipe:
    """Replays one scenario the way an integrator would script it with supervision."""

    def __init__(self, *, sliced: bool, slice_px: int, overlap_px: int) -> None:
        self.sliced = sliced
        self.slice_px = slice_px
        self.overlap_px = overlap_px
        self._detectors: dict[str, Detector | None] = {}

    def _detector(self, config: EdgeConfig) -> Detector:
        key = config.model.model_dump_json() if config.model is not None else ""
        if key not in self._detectors:
            self._detectors[key] = build_detector(config)
        detector = self._detectors[key]
        if detector is None:
            raise ValueError("the supervision recipe needs a model in the configuration")
        return detector

    def run(self, path: Path) -> ScenarioResult:
        import supervision as sv
        from trackers import ByteTrackTracker

        scenario = load_scenario(path)
        config = load_edge_config(scenario.config_path())
        camera = pick_camera(config, scenario.camera)
        detector = self._detector(config)
        result = ScenarioResult(name=scenario.name, path=path)
        clip = str(scenario.clip_path())
        info = sv.VideoInfo.from_video_path(clip)
        stride = max(1, round(info.fps / camera.analysis_fps))
        analysed_fps = info.fps / stride
        tracker = ByteTrackTracker(
            frame_rate=analysed_fps,
            # lost_track_buffer is counted in 30 fps frames: keep a lost track as many seconds
            # as Gridwarden's tracker does; its thresholds too (cars seen from above score
            # 0.4-0.7 with yolox_nano, below the package's defaults of 0.6/0.7).
            lost_track_buffer=round(30 * config.tracker.lost_timeout_s),
            track_activation_threshold=config.tracker.new_track_threshold,
            high_conf_det_threshold=config.tracker.high_threshold,
            minimum_consecutive_frames=config.tracker.min_hits,
        )
        size = np.array([info.width, info.height], dtype=np.float64)
        watched: list[tuple[sv.PolygonZone, DwellClock]] = []
        for zone in camera.zones:
            polygon = np.round(np.array(zone.polygon, dtype=np.float64) * size).astype(np.int32)
            sv_zone = sv.PolygonZone(polygon=polygon, triggering_anchors=(sv.Position.BOTTOM_CENTER,))
            for rule in zone.rules:
                clock = DwellClock(
                    zone.id,
                    rule.type,
                    rule_classes(rule, config, detector.class_names),
                    rule.dwell_s,
                    rule.end_grace_s,
                )
                watched.append((sv_zone, clock))

        cpu = [0.0]
        calls = [0]

        def model(image: np.ndarray) -> sv.Detections:
            t0 = time.process_time()
            found = detector.detect_one(image)
            cpu[0] += time.process_time() - t0
            calls[0] += 1
            return sv.Detections(
                xyxy=found.xyxy.astype(np.float32),
                confidence=found.confidence.astype(np.float32),
                class_id=found.class_id.astype(int),
            )

        infer: Callable[[np.ndarray], sv.Detections] = model
        if self.sliced:
            slicer = sv.InferenceSlicer(
                callback=model,
                slice_wh=(self.slice_px, self.slice_px),
                overlap_wh=(self.overlap_px, self.overlap_px),
                iou_threshold=detector.iou_threshold,
            )
            infer = slicer

        t_start = time.perf_counter()
        media = 0.0
        frames = 0
        for index, frame in enumerate(sv.get_video_frames_generator(clip, stride=stride)):
            media = index * stride / info.fps
            detections = tracker.update(infer(frame), timestamp=media)
            frames += 1
            if detections.tracker_id is None or not len(detections):
                empty = np.zeros(0, dtype=int)
                for _, clock in watched:
                    clock.update(empty, empty, np.zeros(0, bool), media)
                continue
            for sv_zone, clock in watched:
                clock.update(detections.tracker_id, detections.class_id, sv_zone.trigger(detections), media)
        observed = [o for _, clock in watched for o in clock.finish()]
        result.zones = [
            score_zone(z.id, scenario.zones.get(z.id, []), observed, scenario.tolerance_s)
            for z in camera.zones
        ]
        result.frames = frames
        result.detector_calls = calls[0]
        result.media_s = media
        result.wall_s = time.perf_counter() - t_start
        result.detector_cpu_s = cpu[0]
        return result


# ---------------------------------------------------------------- printing
def side_by_side(runs: dict[str, list[ScenarioResult]]) -> str:
    names = list(runs)
    header = f"{'scenario':24} {'zone':11} {'exp':>3}  " + "  ".join(f"{n + ' f/m/x':>18}" for n in names)
    lines = [header, "-" * len(header)]
    first = runs[names[0]]
    for i, r in enumerate(first):
        for k, z in enumerate(r.zones):
            cells = []
            for n in names:
                other = runs[n][i]
                if other.error is not None:
                    cells.append(f"{'ERROR':>18}")
                    continue
                oz = other.zones[k]
                mark = "" if oz.passed else " FAIL"
                cells.append(f"{f'{oz.found}/{oz.missed}/{oz.false}{mark}':>18}")
            lines.append(f"{r.name:24} {z.zone:11} {z.expected:>3}  " + "  ".join(cells))
    lines.append("-" * len(header))
    totals = []
    for n in names:
        zones = [z for r in runs[n] for z in r.zones]
        totals.append(
            f"{f'{sum(z.found for z in zones)}/{sum(z.missed for z in zones)}/{sum(z.false for z in zones)}':>18}"
        )
    expected = sum(z.expected for r in first for z in r.zones)
    lines.append(f"{'TOTAL':24} {'':11} {expected:>3}  " + "  ".join(totals))
    passed = [f"{sum(1 for r in runs[n] if r.passed)}/{len(runs[n])}" for n in names]
    lines.append(f"{'scenarios passed':40}  " + "  ".join(f"{p:>18}" for p in passed))
    lines.append("(f/m/x = found / missed / false; FAIL also when an end is outside the tolerance)")
    lines.append("")
    lines.append(
        f"{'run':14} {'det CPU s':>10} {'det calls':>10} {'frames':>7} {'CPU ms/frame':>13} {'wall s':>8} {'CPU ratio':>10}"
    )
    base = sum(r.detector_cpu_s for r in first)
    for n in names:
        cpu = sum(r.detector_cpu_s for r in runs[n])
        calls = sum(r.detector_calls for r in runs[n])
        frames = sum(r.frames for r in runs[n])
        wall = sum(r.wall_s for r in runs[n])
        lines.append(
            f"{n:14} {cpu:10.2f} {calls:10d} {frames:7d} {1000 * cpu / max(frames, 1):13.1f} {wall:8.1f}"
            f" {cpu / base if base else float('nan'):10.2f}"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "scenarios_dir", type=Path, help="built by scripts/build_scenarios.py (e.g. var/scenarios)"
    )
    ap.add_argument(
        "--only", nargs="+", metavar="NAME", help="scenarios whose file name contains one of these"
    )
    ap.add_argument("--slice", type=int, default=416, help="InferenceSlicer tile side, px (default: 416)")
    ap.add_argument("--overlap", type=int, default=64, help="InferenceSlicer tile overlap, px (default: 64)")
    ap.add_argument("--no-sliced", action="store_true", help="skip the InferenceSlicer run")
    ap.add_argument("--json", type=Path, help="also write every run's `gridwarden eval --json` document here")
    args = ap.parse_args()
    import onnxruntime
    import supervision as sv

    paths = find_scenarios(args.scenarios_dir)
    if args.only:
        paths = [p for p in paths if any(k in p.name for k in args.only)]
    if not paths:
        print(f"error: no *.scenario.yaml under {args.scenarios_dir}", file=sys.stderr)
        return 2
    print(f"supervision {sv.__version__}, onnxruntime {onnxruntime.__version__}; {len(paths)} scenarios")
    runs: dict[str, list[ScenarioResult]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sv-") as work:
        pinned = pinned_scenarios(paths, Path(work))
        plans: list[tuple[str, Callable[[Path], ScenarioResult]]] = [
            ("gridwarden", ScenarioRunner().run),
            ("sv whole", SupervisionRecipe(sliced=False, slice_px=args.slice, overlap_px=args.overlap).run),
        ]
        if not args.no_sliced:
            recipe = SupervisionRecipe(sliced=True, slice_px=args.slice, overlap_px=args.overlap)
            plans.append((f"sv sliced{args.slice}", recipe.run))
        for name, run in plans:
            print(f"\n== {name}: start {load_average()}", flush=True)
            results = []
            for p in pinned:
                t0 = time.perf_counter()
                results.append(run(p))
                print(f"   {results[-1].name}: {time.perf_counter() - t0:.1f} s", flush=True)
            runs[name] = results
            print(format_table(results))
            print(f"== {name}: end {load_average()}", flush=True)
    print("\n" + side_by_side(runs))
    if args.json:
        document: dict[str, Any] = {name: to_json(results) for name, results in runs.items()}
        args.json.write_text(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
