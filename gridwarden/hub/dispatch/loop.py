"""Runs :meth:`DispatchService.tick` every ``interval_s`` in a thread, and dispatch metrics.

One failing tick (database briefly unavailable) is logged and the next one runs as usual;
``health()`` turns false when no tick has succeeded for ten intervals, so the hub's health
follows the worker instead of saying OK while dispatch is dead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from gridwarden.hub.db.models import CaseDispatch, Officer
from gridwarden.hub.dispatch.service import DispatchService

log = logging.getLogger(__name__)


class DispatchLoop:
    def __init__(self, service: DispatchService, interval_s: float | None = None) -> None:
        self.service = service
        self.interval_s = interval_s or service.settings.interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_ok: float | None = None
        self.failures = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dispatch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def healthy(self) -> bool:
        return self.last_ok is not None and time.monotonic() - self.last_ok < 10 * self.interval_s

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.service.tick()
                self.last_ok = time.monotonic()
            except Exception:
                self.failures += 1
                log.exception("dispatch tick failed; next in %.1f s", self.interval_s)
            self._stop.wait(self.interval_s)


class DispatchCollector(Collector):
    """Counters from this process's dispatcher, and queue and roster gauges from the database."""

    def __init__(
        self, service: DispatchService, positions: Callable[[], dict[str, int]] | None = None
    ) -> None:
        self.service = service
        self.positions = positions

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        c = self.service.counters
        for name, value, text in (
            ("offers", c.offers, "offers made to officers"),
            ("offers_expired", c.expired, "offers not answered in time"),
            ("escalations", c.escalations, "cases escalated to the command centre (nobody took them)"),
            ("verified", c.verified, "cases closed as verified by camera"),
            ("reworks", c.reworks, "resolved cases sent back because the camera still saw the object"),
        ):
            yield CounterMetricFamily(f"gridwarden_dispatch_{name}", text, value=value)
        with self.service.db.session() as session:
            queue = GaugeMetricFamily(
                "gridwarden_dispatch_queue", "Cases in the dispatch queue by status", labels=["status"]
            )
            for status, n in session.execute(
                select(CaseDispatch.status, func.count()).group_by(CaseDispatch.status)
            ):
                queue.add_metric([status], n)
            yield queue
            officers = GaugeMetricFamily("gridwarden_officers", "Officers by state", labels=["state"])
            for state, n in session.execute(select(Officer.state, func.count()).group_by(Officer.state)):
                officers.add_metric([state], n)
            yield officers
        if self.positions is not None:
            stats = self.positions()
            yield CounterMetricFamily(
                "gridwarden_officer_positions_stored",
                "OwnTracks positions stored",
                value=stats.get("stored", 0),
            )
            yield CounterMetricFamily(
                "gridwarden_officer_positions_rejected",
                "OwnTracks messages refused",
                value=stats.get("rejected", 0),
            )
