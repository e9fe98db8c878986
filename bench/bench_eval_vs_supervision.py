"""The project's scenario set: Gridwarden's pipeline against the recipe an integrator would script.

The recipe (supervision): the same ONNX detector on every analysed frame, ByteTrack (supervision
0.31 moved its trackers to Roboflow's ``trackers`` package: ``ByteTrackTracker`` with its defaults
but the stream's analysis rate), one
``sv.PolygonZone`` per zone triggered by the bottom-centre anchor, and a clock per tracker id:
an incident starts when a tracker id of the rule's classes has been in the zone for ``dwell_s``
and ends when that id has been out of the zone (or gone) for ``end_grace_s``. It runs once on the
whole frame and once through ``sv.InferenceSlicer`` tiles (slices of the model's input size with
overlap), the usual answer to small objects. It has no class-agnostic path, so static-object
zones expect nothing from it (their incidents count as missed).

Both are scored by the same code as ``gridwarden eval`` (``gridwarden.evaluation.scoring``) and
printed side by side with the detector CPU seconds each spent. Needs ``supervision`` and
``trackers`` in ``.venv-bench``::

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install supervision trackers -e .
    python scripts/build_scenarios.py var/scenarios
    .venv-bench/bin/python bench/bench_eval_vs_supervision.py var/scenarios
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("GRIDWARDEN_SHARED", str(Path(__file__).resolve().parents[2] / "shared"))

from gridwarden.edge.analytics.detector.classes import DEFAULT_CLASS_GROUPS, resolve_classes  # noqa: E402
from gridwarden.edge.analytics.model_loader import build_detector  # noqa: E402
from gridwarden.edge.capture.sources import SourceOptions, open_frames  # noqa: E402
from gridwarden.edge.config import EdgeConfig, IllegalParkingRuleConfig, load_edge_config  # noqa: E402
from gridwarden.edge.replay import pick_camera  # noqa: E402
from gridwarden.evaluation.runner import ScenarioRunner  # noqa: E402
from gridwarden.evaluation.scoring import ObservedIncident, ZoneScore, score_zone  # noqa: E402
from gridwarden.evaluation.truth import find_scenarios, load_scenario  # noqa: E402


@dataclass
class _Clock:
    entered: float
    last_in: float
    incident: str | None = None


@dataclass
class RecipeResult:
    zones: list[ZoneScore]
    detector_cpu_s: float


def run_recipe(scenario_path: Path, *, sliced: bool, detector_cache: dict[str, Any]) -> RecipeResult:
    import supervision as sv
    from trackers import ByteTrackTracker

    scenario = load_scenario(scenario_path)
    config: EdgeConfig = load_edge_config(scenario.config_path())
    camera = pick_camera(config, scenario.camera)
    key = config.model.model_dump_json() if config.model else ""
    if key not in detector_cache:
        detector_cache[key] = build_detector(config)
    detector = detector_cache[key]
    groups = {**DEFAULT_CLASS_GROUPS, **config.class_groups}
    cpu = [0.0]

    def detect(image: np.ndarray) -> sv.Detections:
        t0 = time.process_time()
        d = detector.detect_one(image)
        cpu[0] += time.process_time() - t0
        return sv.Detections(xyxy=d.xyxy.astype(np.float32), confidence=d.confidence, class_id=d.class_id)

    infer: Callable[[np.ndarray], sv.Detections] = detect
    if sliced:
        side = int(detector.input_size[0])
        slicer = sv.InferenceSlicer(callback=detect, slice_wh=(side, side), overlap_wh=(side // 4, side // 4))
        infer = slicer

    tracker = ByteTrackTracker(frame_rate=camera.analysis_fps)
    zones: dict[str, tuple[Any, set[int] | None, float, float]] = {}
    observed: list[ObservedIncident] = []
    clocks: dict[tuple[str, int], _Clock] = {}
    now = 0.0
    for frame in open_frames(
        camera.id, SourceOptions(url=str(scenario.clip_path()), analysis_fps=camera.analysis_fps)
    ):
        now = frame.media_time
        if not zones:
            w, h = frame.width, frame.height
            for zc in camera.zones:
                for rc in zc.rules:
                    if isinstance(rc, IllegalParkingRuleConfig):
                        polygon = (np.asarray(zc.polygon) * [w, h]).astype(np.int32)
                        pz = sv.PolygonZone(polygon=polygon, triggering_anchors=(sv.Position.BOTTOM_CENTER,))
                        ids = resolve_classes(rc.classes, detector.class_names, groups)
                        zones[zc.id] = (pz, ids, rc.dwell_s, rc.end_grace_s)
        tracked = tracker.update(infer(frame.image))
        if len(tracked) and tracked.tracker_id is not None:
            tracked = tracked[tracked.tracker_id >= 0]
        for zone_id, (pz, ids, dwell_s, grace_s) in zones.items():
            inside = pz.trigger(tracked)
            if ids is not None and len(tracked):
                inside &= np.isin(tracked.class_id, list(ids))
            for tid in tracked.tracker_id[inside].tolist() if len(tracked) else []:
                clock = clocks.setdefault((zone_id, tid), _Clock(entered=now, last_in=now))
                clock.last_in = now
                if clock.incident is None and now - clock.entered >= dwell_s:
                    clock.incident = f"{zone_id}-{tid}"
                    observed.append(ObservedIncident(clock.incident, zone_id, "illegal_parking", now, None))
            for (zid, tid), clock in list(clocks.items()):
                if zid == zone_id and now - clock.last_in >= grace_s:
                    if clock.incident is not None:
                        i = next(k for k, o in enumerate(observed) if o.incident_id == clock.incident)
                        o = observed[i]
                        observed[i] = ObservedIncident(o.incident_id, o.zone, o.rule, o.start, now)
                    del clocks[(zid, tid)]
    scores = [
        score_zone(z.id, scenario.zones.get(z.id, []), observed, scenario.tolerance_s) for z in camera.zones
    ]
    return RecipeResult(scores, cpu[0])


def _cell(zones: list[ZoneScore]) -> str:
    found = sum(z.found for z in zones)
    missed = sum(z.missed for z in zones)
    false = sum(z.false for z in zones)
    ok = "ok" if all(z.passed for z in zones) else "FAIL"
    return f"{found}/{missed}/{false} {ok}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenarios", type=Path, help="folder of *.scenario.yaml (scripts/build_scenarios.py)")
    parser.add_argument(
        "--only", nargs="+", metavar="TEXT", help="scenarios whose file name contains one of these"
    )
    args = parser.parse_args()
    paths = [
        p for p in find_scenarios(args.scenarios) if not args.only or any(k in p.name for k in args.only)
    ]
    if not paths:
        print(f"no scenarios under {args.scenarios}", file=sys.stderr)
        return 2
    runner = ScenarioRunner()
    cache: dict[str, Any] = {}
    rows = []
    totals = {"gridwarden": [], "recipe whole": [], "recipe sliced": []}  # type: dict[str, list[ZoneScore]]
    cpu = dict.fromkeys(totals, 0.0)
    print(f"{'scenario':<26}" + "  ".join(f"{name + ' (f/m/x, cpu s)':>21}" for name in totals))
    for path in paths:
        ours = runner.run(path)
        whole = run_recipe(path, sliced=False, detector_cache=cache)
        sliced = run_recipe(path, sliced=True, detector_cache=cache)
        results = {
            "gridwarden": (ours.zones, ours.detector_cpu_s),
            "recipe whole": (whole.zones, whole.detector_cpu_s),
        }
        results["recipe sliced"] = (sliced.zones, sliced.detector_cpu_s)
        cells = []
        for name, (zones, seconds) in results.items():
            totals[name].extend(zones)
            cpu[name] += seconds
            cells.append(f"{_cell(zones):>14} {seconds:6.1f}")
        rows.append(f"{ours.name:<26}" + "  ".join(cells))
        print(rows[-1], flush=True)
    print("-" * len(rows[-1]))
    print(f"{'TOTAL':<26}" + "  ".join(f"{_cell(totals[n]):>14} {cpu[n]:6.1f}" for n in totals))
    print(
        "\ncolumns per pipeline: found/missed/false and ok|FAIL against the ground truth, then the "
        "detector's CPU seconds.\npipelines: "
        + " | ".join(totals)
        + f"\nCPU ratios vs gridwarden (same process): whole {cpu['recipe whole'] / max(cpu['gridwarden'], 1e-9):.2f}x, "
        f"sliced {cpu['recipe sliced'] / max(cpu['gridwarden'], 1e-9):.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
