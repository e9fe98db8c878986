"""The SLA clock of a case: how long from detection to confirmation, dispatch and resolution.

The clock starts at the incident's ``started`` wall time on the edge (when the rule fired), not
when the hub received it: a broker outage or a slow operator both count against the district's
target. Each milestone has a target (ten minutes by default); a milestone is ``breached`` when it
was reached late, or when it is still pending and the target has already passed. The clock stops
for milestones a case can no longer reach (a rejected case is never dispatched): those are
neither running nor breached.

>>> from datetime import UTC, datetime, timedelta
>>> t0 = datetime(2025, 1, 1, tzinfo=UTC)
>>> r = compute_sla(t0, {"confirmed": t0 + timedelta(minutes=3)}, reachable=set(MILESTONES),
...                 policy=SlaPolicy.uniform(600), now=t0 + timedelta(minutes=12))
>>> r.milestones["confirmed"].breached, r.milestones["dispatched"].breached, r.breached
(False, True, True)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, computed_field

# The milestones the clock measures, in the order a case reaches them.
MILESTONES: tuple[str, ...] = ("confirmed", "dispatched", "resolved")
DEFAULT_TARGET_S = 600.0


class SlaPolicy(BaseModel):
    """Target seconds from detection to each milestone."""

    model_config = ConfigDict(frozen=True)

    targets_s: dict[str, float] = Field(default_factory=lambda: dict.fromkeys(MILESTONES, DEFAULT_TARGET_S))

    @classmethod
    def uniform(cls, target_s: float = DEFAULT_TARGET_S) -> SlaPolicy:
        """The same target for every milestone (the district's ten minutes by default)."""
        if target_s <= 0:
            raise ValueError(f"SLA target must be positive, got {target_s}")
        return cls(targets_s=dict.fromkeys(MILESTONES, float(target_s)))


class SlaMilestone(BaseModel):
    name: str
    target_s: float
    reached_at: datetime | None = None
    # Seconds from detection to the milestone, or to ``as_of`` while the clock runs.
    elapsed_s: float | None = None
    running: bool = False
    breached: bool = False


class SlaReport(BaseModel):
    detected_at: datetime
    as_of: datetime
    milestones: dict[str, SlaMilestone]
    breached: bool

    @computed_field  # type: ignore[prop-decorator]
    @property
    def time_to_confirm_s(self) -> float | None:
        return self._reached_elapsed("confirmed")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def time_to_dispatch_s(self) -> float | None:
        return self._reached_elapsed("dispatched")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def time_to_resolve_s(self) -> float | None:
        return self._reached_elapsed("resolved")

    def _reached_elapsed(self, name: str) -> float | None:
        m = self.milestones[name]
        return m.elapsed_s if m.reached_at is not None else None


def compute_sla(
    detected_at: datetime,
    reached: Mapping[str, datetime | None],
    *,
    reachable: Collection[str],
    policy: SlaPolicy,
    now: datetime,
) -> SlaReport:
    """Evaluate every milestone of one case at ``now``.

    ``reached`` maps milestone name to when the case first got there; ``reachable`` names the
    milestones the case can still get to (the clock keeps running only for those).
    """
    milestones: dict[str, SlaMilestone] = {}
    for name in MILESTONES:
        target = policy.targets_s[name]
        at = reached.get(name)
        if at is not None:
            elapsed = (at - detected_at).total_seconds()
            milestones[name] = SlaMilestone(
                name=name, target_s=target, reached_at=at, elapsed_s=elapsed, breached=elapsed > target
            )
        elif name in reachable:
            elapsed = (now - detected_at).total_seconds()
            milestones[name] = SlaMilestone(
                name=name, target_s=target, elapsed_s=elapsed, running=True, breached=elapsed > target
            )
        else:
            milestones[name] = SlaMilestone(name=name, target_s=target)
    return SlaReport(
        detected_at=detected_at,
        as_of=now,
        milestones=milestones,
        breached=any(m.breached for m in milestones.values()),
    )
