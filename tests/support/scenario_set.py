"""The project's scenario set for ``gridwarden eval``, built from the shared footage.

Each scenario is a clip made from real frames of car-detection.mp4 (see
:mod:`tests.support.footage`), an edge configuration and a ``.scenario.yaml`` with the ground
truth, written into one folder (never committed: footage stays in ../shared). Times are media
seconds of the built clip; the car-detection.mp4 facts they rest on are in
:mod:`tests.support.scenarios` (the white car stands at frame 76 = 6.08 s, its anchor leaves the
no-parking zone ~0.6 s after it drives on; at frame 209 a red car stands at the same place and
leaves the zone ~0.7 s after it drives on).

Run ``python scripts/build_scenarios.py OUT_DIR`` (or :func:`build_scenario_set`) and then
``gridwarden eval OUT_DIR``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.footage import (
    Dusk,
    Effect,
    Flicker,
    Goods,
    Hold,
    Occluder,
    Play,
    Segment,
    Shadow,
    write_clip,
)
from tests.support.paths import CAR_CLIP, YOLOX_NANO
from tests.support.scenarios import HOLD_FRAME, HOLD_START, LEAVE_AFTER_HOLD_S, PARKING_ZONE

FPS = 12.5
# Where goods are put down and where the static-object rule watches: an empty stretch of the car
# park right of the driving lane (no car enters it in the clip).
PAVEMENT_ZONE = [[0.70, 0.30], [0.98, 0.30], [0.98, 0.80], [0.70, 0.80]]
GOODS_BOX = (0.78, 0.42, 0.88, 0.62)
# The lorry roof that hides the white car's place (and more) when it stops in front.
LORRY_ROOF = (0.28, 0.18, 0.68, 1.0)
RED_CAR_FRAME = 209  # the red car stands where the white car stood (IoU 0.63 with its box)
RED_LEAVES_AFTER_S = 0.72  # from the end of its hold until its anchor leaves the zone


def _play_s(first: int, last: int) -> float:
    return (last - first + 1) / FPS


@dataclass
class ScenarioSpec:
    name: str
    description: str
    segments: list[Segment]
    effects: list[Effect]
    rules: dict[str, list[dict[str, Any]]]  # zone id -> rule entries of the edge configuration
    expected: dict[str, list[dict[str, Any]]]  # zone id -> expected incidents
    clip: Path | None = None  # an existing clip to use as it is (no segments)
    zones: dict[str, list[list[float]]] = field(
        default_factory=lambda: {"no-parking": PARKING_ZONE, "pavement": PAVEMENT_ZONE}
    )


def _parking(dwell_s: float) -> list[dict[str, Any]]:
    return [
        {"type": "illegal_parking", "classes": ["overhead_vehicle"], "dwell_s": dwell_s, "end_grace_s": 1}
    ]


def _static(dwell_s: float) -> list[dict[str, Any]]:
    return [{"type": "static_object", "dwell_s": dwell_s, "end_grace_s": 1}]


def specs() -> list[ScenarioSpec]:
    parked_until = HOLD_START + 84.0
    hidden_then_other_until = HOLD_START + 30.0 + 45.0
    return [
        ScenarioSpec(
            name="parked-hidden-twice",
            description="White car parks at 6.08 s for 84 s; a lorry roof (no class fits) hides it "
            "10-35 s (before its 40 s dwell) and 52-77 s (after the incident started).",
            segments=[Play(0, HOLD_FRAME - 1), Hold(HOLD_FRAME, 84.0), Play(HOLD_FRAME + 1, 120)],
            effects=[Occluder(LORRY_ROOF, 10.0, 35.0), Occluder(LORRY_ROOF, 52.0, 77.0)],
            rules={"no-parking": _parking(40.0), "pavement": _static(10.0)},
            expected={"no-parking": [{"start": HOLD_START + 40.0, "end": parked_until + LEAVE_AFTER_HOLD_S}]},
        ),
        ScenarioSpec(
            name="car-leaves-while-hidden",
            description="White car parks at 6.08 s; a lorry roof hides it 20-50 s and it drives off "
            "unseen; when the lorry leaves at 50 s the place is empty.",
            segments=[Play(0, HOLD_FRAME - 1), Hold(HOLD_FRAME, 30.0), Hold(120, 30.0), Play(121, 160)],
            effects=[Occluder(LORRY_ROOF, 20.0, 50.0)],
            rules={"no-parking": _parking(10.0), "pavement": _static(10.0)},
            expected={"no-parking": [{"start": HOLD_START + 10.0, "end": 50.0}]},
        ),
        ScenarioSpec(
            name="other-car-while-hidden",
            description="White car parks at 6.08 s; a lorry roof hides it 20-50 s; when it leaves, a "
            "red car stands at the same place (until 81.08 s): two incidents.",
            segments=[
                Play(0, HOLD_FRAME - 1),
                Hold(HOLD_FRAME, 30.0),
                Hold(RED_CAR_FRAME, 45.0),
                Play(RED_CAR_FRAME + 1, 250),
            ],
            effects=[Occluder(LORRY_ROOF, 20.0, 50.0)],
            rules={"no-parking": _parking(10.0), "pavement": _static(10.0)},
            expected={
                "no-parking": [
                    {"start": HOLD_START + 10.0, "end": 50.0},
                    {"start": 60.0, "end": hidden_then_other_until + RED_LEAVES_AFTER_S},
                ]
            },
        ),
        ScenarioSpec(
            name="goods-placed",
            description="The whole clip (cars drive through), then its last frame held; cardboard "
            "boxes are put down on the pavement at 8.0 s and stay: the 30 s static-object rule "
            "fires at 38.0 s.",
            segments=[Play(0, 376), Hold(376, 25.0)],
            effects=[Goods(GOODS_BOX, 8.0)],
            rules={"no-parking": _parking(20.0), "pavement": _static(30.0)},
            expected={"pavement": [{"start": 38.0, "end": None, "rule": "static_object"}]},
        ),
        ScenarioSpec(
            name="dusk-parked",
            description="Parked car (6.08 s for 40 s) at dusk: brightness x0.12, sensor noise 11 "
            "levels; the detector scores it 0.3-0.5. No static object on the empty pavement.",
            segments=[Play(0, HOLD_FRAME - 1), Hold(HOLD_FRAME, 40.0), Play(HOLD_FRAME + 1, 110)],
            effects=[Dusk(gain=0.12, noise=11.0)],
            rules={"no-parking": _parking(20.0), "pavement": _static(10.0)},
            expected={
                "no-parking": [{"start": HOLD_START + 20.0, "end": HOLD_START + 40.0 + LEAVE_AFTER_HOLD_S}]
            },
        ),
        ScenarioSpec(
            name="dusk-headlights",
            description="As dusk-parked, plus a 1 s brightness pulse (x1.6, headlights) every 7 s.",
            segments=[Play(0, HOLD_FRAME - 1), Hold(HOLD_FRAME, 40.0), Play(HOLD_FRAME + 1, 110)],
            effects=[Dusk(gain=0.12, noise=11.0), Flicker(period_s=7.0, pulse_s=1.0, amplitude=0.6)],
            rules={"no-parking": _parking(20.0), "pavement": _static(10.0)},
            expected={
                "no-parking": [{"start": HOLD_START + 20.0, "end": HOLD_START + 40.0 + LEAVE_AFTER_HOLD_S}]
            },
        ),
        ScenarioSpec(
            name="shadow-sweep",
            description="Parked car (6.08 s for 114 s) while a building's shadow (half the frame "
            "wide, 50 % darker) sweeps slowly across the view from 3 s to 118 s: every pavement "
            "pixel lies in it for ~30 s. The shadow is not a static object.",
            segments=[Play(0, HOLD_FRAME - 1), Hold(HOLD_FRAME, 114.0), Play(HOLD_FRAME + 1, 120)],
            effects=[Shadow(3.0, 118.0, width=0.5, depth=0.5)],
            rules={"no-parking": _parking(40.0), "pavement": _static(5.0)},
            expected={
                "no-parking": [{"start": HOLD_START + 40.0, "end": HOLD_START + 114.0 + LEAVE_AFTER_HOLD_S}]
            },
        ),
        ScenarioSpec(
            name="drive-through",
            description="car-detection.mp4 as recorded: cars drive through the zone, none stops.",
            segments=[],
            effects=[],
            clip=CAR_CLIP,
            rules={"no-parking": _parking(8.0)},
            expected={},
            zones={"no-parking": PARKING_ZONE},
        ),
    ]


def _config(spec: ScenarioSpec, model: Path) -> dict[str, Any]:
    return {
        "edge_id": "edge-eval",
        "site": "eval",
        "model": {"path": str(model), "input_size": 416},
        # Seen from above, COCO models call cars bus, truck or cell phone (../shared/README.md).
        "class_groups": {"overhead_vehicle": ["car", "bus", "truck", "cell phone"]},
        "cameras": [
            {
                "id": "cam-lot",
                "kind": "skynet",
                "url": "unused.mp4",
                "analysis_fps": 2,
                "zones": [{"id": z, "polygon": spec.zones[z], "rules": spec.rules[z]} for z in spec.zones],
            }
        ],
    }


def build_scenario_set(out: Path, names: Sequence[str] | None = None, model: Path = YOLOX_NANO) -> list[Path]:
    """Write every scenario (clip once, configuration and truth each time) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in specs():
        if names is not None and spec.name not in names:
            continue
        if spec.clip is not None:
            clip = spec.clip
        else:
            clip = out / f"{spec.name}.mp4"
            write_clip(clip, spec.segments, spec.effects)
        config = out / f"{spec.name}.edge.yaml"
        config.write_text(yaml.safe_dump(_config(spec, model), sort_keys=False))
        truth = {
            "description": spec.description,
            "clip": str(clip) if spec.clip is not None else clip.name,
            "config": config.name,
            "camera": "cam-lot",
            "tolerance_s": 2.0,
            "zones": {z: [_rounded(e) for e in spec.expected.get(z, [])] for z in spec.zones},
        }
        path = out / f"{spec.name}.scenario.yaml"
        path.write_text(yaml.safe_dump(truth, sort_keys=False, width=100))
        written.append(path)
    return written


def _rounded(expected: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in expected.items()}
