"""Match the incidents a replay raised to the expected ones, zone by zone.

An observed incident (``started`` .. ``ended`` events of one incident id) *finds* an expected one
of the same zone (and rule, when the expectation names one) when its start is within the
tolerance; pairs are matched closest start first, each used once. A found incident whose end is
wrong (outside the tolerance, still open when it should have ended, or ended when it should be
open) fails its expectation. Expected incidents left over are *missed*; observed ones left over
are *false*. A zone passes when nothing is missed, nothing is false and every end is right.

Example::

    >>> observed = [ObservedIncident("a", "no-parking", "illegal_parking", 47.0, 91.5)]
    >>> score = score_zone("no-parking", [ExpectedIncident(start=46.1, end=90.7)], observed, 2.0)
    >>> (score.found, score.missed, score.false, score.passed)
    (1, 0, 0, True)
    >>> round(score.matches[0].start_error, 1), round(score.matches[0].end_error, 1)
    (0.9, 0.8)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from gridwarden.contract import IncidentEvent
from gridwarden.evaluation.truth import ExpectedIncident


@dataclass(frozen=True)
class ObservedIncident:
    """One incident as the pipeline raised it; ``end`` is None while it was still open."""

    incident_id: str
    zone: str
    rule: str
    start: float
    end: float | None


@dataclass
class Match:
    expected: ExpectedIncident
    observed: ObservedIncident
    tolerance_s: float

    @property
    def start_error(self) -> float:
        """Observed minus expected start: positive when the incident came late."""
        return self.observed.start - self.expected.start

    @property
    def end_error(self) -> float | None:
        """Observed minus expected end; None when either is open."""
        if self.expected.end is None or self.observed.end is None:
            return None
        return self.observed.end - self.expected.end

    @property
    def end_ok(self) -> bool:
        if self.expected.end is None or self.observed.end is None:
            return self.expected.end is None and self.observed.end is None
        return abs(self.observed.end - self.expected.end) <= self.tolerance_s

    @property
    def end_problem(self) -> str | None:
        """Why the end is wrong, in words; None when it is right."""
        if self.end_ok:
            return None
        if self.observed.end is None:
            return f"still open, expected to end at {self.expected.end:.1f}"
        if self.expected.end is None:
            return f"ended at {self.observed.end:.1f}, expected to stay open"
        return f"ended at {self.observed.end:.1f}, expected {self.expected.end:.1f} +- {self.tolerance_s:g}"


@dataclass
class ZoneScore:
    zone: str
    expected: int
    matches: list[Match] = field(default_factory=list)
    missed_incidents: list[ExpectedIncident] = field(default_factory=list)
    false_incidents: list[ObservedIncident] = field(default_factory=list)

    @property
    def found(self) -> int:
        return len(self.matches)

    @property
    def missed(self) -> int:
        return len(self.missed_incidents)

    @property
    def false(self) -> int:
        return len(self.false_incidents)

    @property
    def wrong_ends(self) -> int:
        return sum(1 for m in self.matches if not m.end_ok)

    @property
    def passed(self) -> bool:
        return self.missed == 0 and self.false == 0 and self.wrong_ends == 0


def observed_incidents(events: Iterable[IncidentEvent]) -> list[ObservedIncident]:
    """Fold a replay's events into incidents (first ``started``, last ``ended`` of each id)."""
    starts: dict[str, IncidentEvent] = {}
    ends: dict[str, float] = {}
    for e in events:
        if e.event == "started" and e.incident_id not in starts:
            starts[e.incident_id] = e
        elif e.event == "ended":
            ends[e.incident_id] = e.media_time
    return [
        ObservedIncident(iid, e.zone, e.rule, e.media_time, ends.get(iid))
        for iid, e in sorted(starts.items(), key=lambda kv: kv[1].media_time)
    ]


def score_zone(
    zone: str, expected: list[ExpectedIncident], observed: list[ObservedIncident], tolerance_s: float
) -> ZoneScore:
    """Score one zone; ``observed`` may hold other zones' incidents (they are ignored)."""
    mine = [o for o in observed if o.zone == zone]
    candidates: list[tuple[float, int, int]] = []
    for ei, exp in enumerate(expected):
        tol = exp.tolerance_s or tolerance_s
        for oi, obs in enumerate(mine):
            if exp.rule is not None and obs.rule != exp.rule:
                continue
            error = abs(obs.start - exp.start)
            if error <= tol:
                candidates.append((error, ei, oi))
    score = ZoneScore(zone=zone, expected=len(expected))
    used_e: set[int] = set()
    used_o: set[int] = set()
    for _, ei, oi in sorted(candidates):
        if ei in used_e or oi in used_o:
            continue
        used_e.add(ei)
        used_o.add(oi)
        score.matches.append(Match(expected[ei], mine[oi], expected[ei].tolerance_s or tolerance_s))
    score.matches.sort(key=lambda m: m.expected.start)
    score.missed_incidents = [e for i, e in enumerate(expected) if i not in used_e]
    score.false_incidents = [o for i, o in enumerate(mine) if i not in used_o]
    return score
