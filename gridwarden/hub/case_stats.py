"""Scrape-time counts of cases for ``/metrics``: cases per state, and cases breaching an SLA milestone.

The hub's case definitions (states, which states can still reach a milestone, the column that
records it) live in :mod:`gridwarden.hub.cases`; these queries use them so the figures agree with
the SLA shown on each case. :class:`~gridwarden.observability.HubMetrics` only calls them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from gridwarden.hub.cases import REACHABLE, STATE_TIMESTAMP
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import Case
from gridwarden.hub.sla import MILESTONES


def case_counts_by_state(db: Database) -> Callable[[], dict[str, int]]:
    """A scrape-time query: number of cases in each state (one indexed GROUP BY)."""
    stmt = select(Case.state, func.count()).group_by(Case.state)

    def read() -> dict[str, int]:
        with db.session() as session:
            return {state: int(n) for state, n in session.execute(stmt)}

    return read


def sla_overdue_counts(
    db: Database, *, target_s: float | Mapping[str, float], clock: Callable[[], datetime] | None = None
) -> Callable[[], dict[str, int]]:
    """A scrape-time query per SLA milestone: cases that have not reached it, still can, and
    were detected longer ago than its target — i.e. breaching now and still actionable.

    Uses the hub's own definitions (milestones, which states can still reach them, the column that
    records each milestone), so it agrees with the SLA shown on each case.
    """
    targets = (
        dict.fromkeys(MILESTONES, float(target_s)) if isinstance(target_s, int | float) else dict(target_s)
    )
    now_fn = clock or (lambda: datetime.now(UTC))
    running_states = {m: sorted(s for s, reach in REACHABLE.items() if m in reach) for m in MILESTONES}

    def read() -> dict[str, int]:
        now = now_fn()
        out: dict[str, int] = {}
        with db.session() as session:
            for milestone in MILESTONES:
                cutoff = now - timedelta(seconds=targets[milestone])
                stmt = (
                    select(func.count())
                    .select_from(Case)
                    .where(
                        Case.state.in_(running_states[milestone]),
                        getattr(Case, STATE_TIMESTAMP[milestone]).is_(None),
                        Case.detected_at < cutoff,
                    )
                )
                out[milestone] = int(session.scalar(stmt) or 0)
        return out

    return read
