"""How long an officer needs to reach a case: the dispatcher ranks officers by it.

The default, :class:`GreatCircleEstimator`, is great-circle distance times a detour factor
(streets are not straight; 1.4 is typical of a city grid) over the speed of the officer's
transport. It needs no map and costs microseconds.

To use a routing service instead (OSRM's ``/table``, Valhalla's ``sources_to_targets`` or a
precomputed travel-time table), write a class with the same ``estimate`` method and name its
factory in ``GRIDWARDEN_DISPATCH_ESTIMATOR=package.module:factory``; the factory receives the
:class:`~gridwarden.hub.dispatch.settings.DispatchSettings`. ``estimate`` gets every candidate at
once so a table service answers in one request::

    class OsrmEstimator:
        def estimate(self, case, officers):
            # one GET /table/v1/driving/{case};{o1};{o2}...?sources=1;2;...&destinations=0
            return [Estimate(distance_m=..., seconds=...) for o in officers]

Return ``None`` in place of an estimate for an officer the service cannot route: that officer is
skipped for this case.

>>> est = GreatCircleEstimator(detour_factor=1.4, speeds_mps={"foot": 1.4})
>>> e = est.estimate(Place(31.23, 121.47), [Candidate(1, 31.24, 121.47, "foot")])[0]
>>> round(e.distance_m), round(e.seconds)
(1112, 1112)
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from gridwarden.hub.places.geometry import great_circle_m


@dataclass(frozen=True)
class Place:
    lat: float
    lon: float


@dataclass(frozen=True)
class Candidate:
    officer_id: int
    lat: float
    lon: float
    transport: str


@dataclass(frozen=True)
class Estimate:
    distance_m: float
    seconds: float


class TravelTimeEstimator(Protocol):
    def estimate(self, case: Place, officers: Sequence[Candidate]) -> list[Estimate | None]: ...


class GreatCircleEstimator:
    def __init__(self, *, detour_factor: float, speeds_mps: Mapping[str, float]) -> None:
        self.detour_factor = detour_factor
        self.speeds_mps = dict(speeds_mps)

    def estimate(self, case: Place, officers: Sequence[Candidate]) -> list[Estimate | None]:
        out: list[Estimate | None] = []
        for o in officers:
            speed = self.speeds_mps.get(o.transport)
            if not speed:
                out.append(None)
                continue
            distance = great_circle_m(o.lat, o.lon, case.lat, case.lon) * self.detour_factor
            out.append(Estimate(distance_m=distance, seconds=distance / speed))
        return out


def load_estimator(spec: str | None, settings: object) -> TravelTimeEstimator:
    """The estimator named by ``module:factory`` (called with the settings), or the default."""
    if not spec:
        detour = getattr(settings, "detour_factor", 1.4)
        speeds = getattr(settings, "speeds_mps", {"foot": 1.3, "ebike": 4.2, "car": 6.9})
        return GreatCircleEstimator(detour_factor=detour, speeds_mps=speeds)
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ValueError(f"estimator {spec!r}: expected 'package.module:factory'")
    factory = getattr(importlib.import_module(module_name), attr)
    estimator: TravelTimeEstimator = factory(settings)
    return estimator
