"""Prometheus metrics for the edge and the hub.

Why collectors that read state at scrape time: the edge's analysis loop already keeps per-camera
counters and the outbox knows its depth, so copying every change into Prometheus objects would
make the hot loop pay for every frame. A custom collector asks those objects when Prometheus
scrapes (every 15 s or so) and costs nothing in between. The only metric fed from the hot path
is the inference-time histogram: a distribution cannot be rebuilt from state afterwards, and one
``observe()`` per detector batch is a few hundred nanoseconds next to milliseconds of inference.

The collectors read through small protocols (:class:`EdgeStateSource`, :class:`OutboxLike`), which
:class:`~gridwarden.edge.runner.EdgeRunner` and :class:`~gridwarden.edge.transport.outbox.Outbox` satisfy as
they are, so this module imports neither.

Each :class:`EdgeMetrics` / :class:`HubMetrics` owns its own :class:`CollectorRegistry` (with the
process, platform and GC collectors), so tests and several instances in one process never collide
on metric names in the global registry.

Edge series (label ``camera`` unless noted)::

    gridwarden_edge_camera_input_fps, _analysed_fps, _lag_seconds      gauges
    gridwarden_edge_camera_state{camera,state}                          1 for the current state
    gridwarden_edge_camera_reconnects_total                             counter
    gridwarden_edge_stream_connected{camera,role}                       1 online, 0 not (per input stream)
    gridwarden_edge_stream_input_fps{camera,role}, _bitrate_bps{...}    gauges
    gridwarden_edge_stream_reconnects_total{camera,role}                counter
    gridwarden_edge_camera_keyframes_only                               1 when decoding keyframes only
    gridwarden_edge_frames_analysed_total, _frames_gated_total,
    gridwarden_edge_frames_detected_total                               counters
    gridwarden_edge_incident_events_total{camera,rule}                  counter (started/updated/ended)
    gridwarden_edge_inference_seconds                                   histogram, per detector call
    gridwarden_edge_inference_images_total                              counter
    gridwarden_edge_outbox_depth, gridwarden_edge_outbox_dropped_total  gauge, counter
    gridwarden_edge_loop_heartbeat_age_seconds                          gauge

Hub series::

    gridwarden_hub_ingest_messages_total{outcome,reason}   stored|duplicate|status|ignored|rejected
    gridwarden_hub_ingest_gaps_total, _missing_seqs_total, _db_errors_total, _mqtt_connects_total
    gridwarden_hub_ingest_batch_seconds                    summary (count, sum) of store+commit
    gridwarden_hub_db_statement_seconds{operation}         histogram (SQLAlchemy cursor events)
    gridwarden_hub_cases{state}                            gauge, queried at scrape time
    gridwarden_hub_sla_overdue_cases{milestone}            gauge: clock still running, past target

Every scrape also reports ``gridwarden_metrics_source_up{source}``: 0 when reading a source
raised (the error is logged), so a broken database shows as a metric, not as a failed scrape.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

from gridwarden.observability.liveness import Liveness

if TYPE_CHECKING:
    from sqlalchemy import Engine


log = logging.getLogger(__name__)

CAMERA_STATES: tuple[str, ...] = ("connecting", "online", "offline")
# Detector calls take ~5 ms (GPU) to ~1 s (a slow CPU with a big batch).
INFERENCE_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
_SQL_OPERATIONS = frozenset({"select", "insert", "update", "delete", "begin", "with", "pragma"})


# --------------------------------------------------------------------------- protocols


class CameraStatusLike(Protocol):
    """What the collector reads of one camera's status (``gridwarden.contract.CameraStatus``)."""

    @property
    def camera(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def input_fps(self) -> float: ...
    @property
    def analysed_fps(self) -> float: ...
    @property
    def lag_s(self) -> float | None: ...
    @property
    def reconnects(self) -> int: ...
    @property
    def streams(self) -> Sequence[Any]: ...  # gridwarden.contract.StreamStatus
    @property
    def decode(self) -> str | None: ...


class CameraCountersLike(Protocol):
    """Per-camera running totals (``gridwarden.edge.runner.CameraCounters``)."""

    @property
    def analysed(self) -> int: ...
    @property
    def detector_frames(self) -> int: ...
    @property
    def gated(self) -> int: ...
    @property
    def incidents(self) -> Mapping[str, int]: ...


class EdgeStateSource(Protocol):
    """The live edge as the collector sees it (``gridwarden.edge.runner.EdgeRunner``)."""

    @property
    def counters(self) -> Mapping[str, CameraCountersLike]: ...
    def camera_statuses(self) -> Sequence[CameraStatusLike]: ...


class OutboxLike(Protocol):
    """``gridwarden.edge.transport.outbox.Outbox``."""

    def depth(self) -> int: ...
    def dropped(self) -> int: ...


class SupportsDetect(Protocol):
    def detect(self, images: Sequence[Any]) -> list[Any]: ...


D = TypeVar("D", bound=SupportsDetect)


# --------------------------------------------------------------------------- shared plumbing


def new_registry() -> CollectorRegistry:
    """A registry with the standard process, platform and garbage-collector series."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class _SourceCollector(Collector):
    """Runs named read functions at scrape time; one failing source does not fail the scrape."""

    def __init__(self) -> None:
        self._sources: dict[str, Callable[[], Iterable[Metric]]] = {}
        self._lock = threading.Lock()

    def add(self, name: str, read: Callable[[], Iterable[Metric]]) -> None:
        with self._lock:
            self._sources[name] = read

    def describe(self) -> Iterable[Metric]:
        return []  # families depend on what is attached; skip the registry's duplicate check

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            sources = list(self._sources.items())
        up = GaugeMetricFamily(
            "gridwarden_metrics_source_up",
            "1 if the last read of this metrics source succeeded, 0 if it raised (see the log)",
            labels=["source"],
        )
        for name, read in sources:
            try:
                families = list(read())
            except Exception:  # a scrape must still show every other source
                log.exception("metrics source %s failed", name)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up


# --------------------------------------------------------------------------- edge


class EdgeMetrics:
    """The edge's metrics: attach the runner, the outbox and the loop's liveness, then serve.

    >>> metrics = EdgeMetrics(edge_id="edge-01")
    >>> metrics.watch_runner(runner); metrics.watch_outbox(outbox)         # doctest: +SKIP
    >>> detector = metrics.instrument_detector(detector)                    # doctest: +SKIP
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, edge_id: str | None = None) -> None:
        self.registry = registry if registry is not None else new_registry()
        self.edge_id = edge_id
        self.inference_seconds = Histogram(
            "gridwarden_edge_inference_seconds",
            "Wall time of one detector call (preprocess, batched inference, postprocess)",
            buckets=INFERENCE_BUCKETS,
            registry=self.registry,
        )
        self.inference_images = Counter(
            "gridwarden_edge_inference_images",
            "Images passed through the detector",
            registry=self.registry,
        )
        self._sources = _SourceCollector()
        self.registry.register(self._sources)

    def watch_runner(self, runner: EdgeStateSource) -> None:
        self._sources.add("cameras", lambda: _camera_families(runner))

    def watch_outbox(self, outbox: OutboxLike) -> None:
        self._sources.add("outbox", lambda: _outbox_families(outbox))

    def watch_liveness(self, liveness: Liveness) -> None:
        def read() -> list[Metric]:
            age = liveness.age_s()
            family = GaugeMetricFamily(
                "gridwarden_edge_loop_heartbeat_age_seconds",
                "Seconds since the analysis loop last beat (NaN before its first beat)",
            )
            family.add_metric([], float("nan") if age is None else age)
            return [family]

        self._sources.add("liveness", read)

    def observe_inference(self, seconds: float, images: int) -> None:
        self.inference_seconds.observe(seconds)
        self.inference_images.inc(images)

    def instrument_detector(self, detector: D) -> D:
        """Time every ``detector.detect`` call; returns the same object (its type unchanged).

        Wraps the bound method on the instance rather than returning a proxy, so the runner keeps
        a real :class:`~gridwarden.edge.analytics.detector.Detector` (attributes, type checks) and nothing
        else changes. Instrumenting twice would double-count, so it refuses.
        """
        original = detector.detect
        if getattr(original, "_gridwarden_timed", False):
            raise ValueError("detector is already instrumented")
        observe = self.observe_inference

        def timed_detect(images: Sequence[Any]) -> list[Any]:
            started = time.perf_counter()
            result = original(images)
            if len(images):
                observe(time.perf_counter() - started, len(images))
            return result

        timed_detect._gridwarden_timed = True  # type: ignore[attr-defined]
        detector.detect = timed_detect  # type: ignore[method-assign]
        return detector


def _camera_families(runner: EdgeStateSource) -> list[Metric]:
    labels = ["camera"]
    input_fps = GaugeMetricFamily(
        "gridwarden_edge_camera_input_fps", "Frames a second decoded from the camera", labels=labels
    )
    analysed_fps = GaugeMetricFamily(
        "gridwarden_edge_camera_analysed_fps", "Frames a second analysed (10 s window)", labels=labels
    )
    lag = GaugeMetricFamily(
        "gridwarden_edge_camera_lag_seconds", "How far analysis runs behind the camera", labels=labels
    )
    state = GaugeMetricFamily(
        "gridwarden_edge_camera_state", "1 for the camera's current state", labels=["camera", "state"]
    )
    reconnects = CounterMetricFamily(
        "gridwarden_edge_camera_reconnects", "Reconnects to the camera since start", labels=labels
    )
    keyframes_only = GaugeMetricFamily(
        "gridwarden_edge_camera_keyframes_only",
        "1 when the detect stream is decoded keyframes only (config or decode budget)",
        labels=labels,
    )
    stream_labels = ["camera", "role"]
    connected = GaugeMetricFamily(
        "gridwarden_edge_stream_connected", "1 while the input stream is online", labels=stream_labels
    )
    stream_fps = GaugeMetricFamily(
        "gridwarden_edge_stream_input_fps", "Frames a second read from the input stream", labels=stream_labels
    )
    bitrate = GaugeMetricFamily(
        "gridwarden_edge_stream_bitrate_bps", "Video bits a second read from the stream", labels=stream_labels
    )
    stream_reconnects = CounterMetricFamily(
        "gridwarden_edge_stream_reconnects",
        "Reconnects to the input stream since start",
        labels=stream_labels,
    )
    for status in runner.camera_statuses():
        cam = [status.camera]
        input_fps.add_metric(cam, status.input_fps)
        analysed_fps.add_metric(cam, status.analysed_fps)
        if status.lag_s is not None:
            lag.add_metric(cam, status.lag_s)
        for name in (*CAMERA_STATES, *([] if status.state in CAMERA_STATES else [status.state])):
            state.add_metric([status.camera, name], 1.0 if name == status.state else 0.0)
        reconnects.add_metric(cam, status.reconnects)
        if status.decode is not None:
            keyframes_only.add_metric(cam, 1.0 if status.decode == "keyframes_only" else 0.0)
        for stream in status.streams:
            # A one-URL camera has one stream doing both jobs: labelled by its first role.
            role = [status.camera, stream.roles[0]]
            connected.add_metric(role, 1.0 if stream.state == "online" else 0.0)
            stream_fps.add_metric(role, stream.input_fps)
            bitrate.add_metric(role, stream.bitrate_kbps * 1000.0)
            stream_reconnects.add_metric(role, stream.reconnects)

    analysed = CounterMetricFamily(
        "gridwarden_edge_frames_analysed", "Frames through the analysis loop", labels=labels
    )
    gated = CounterMetricFamily(
        "gridwarden_edge_frames_gated",
        "Analysed frames the motion gate kept from the detector",
        labels=labels,
    )
    detected = CounterMetricFamily(
        "gridwarden_edge_frames_detected", "Analysed frames that went through the detector", labels=labels
    )
    incidents = CounterMetricFamily(
        "gridwarden_edge_incident_events",
        "Incident events (started, updated, ended) emitted, by rule",
        labels=["camera", "rule"],
    )
    for camera, counters in list(runner.counters.items()):
        analysed.add_metric([camera], counters.analysed)
        gated.add_metric([camera], counters.gated)
        detected.add_metric([camera], counters.detector_frames)
        # dict() copies under the GIL: the loop thread may be adding a rule key meanwhile.
        for rule, count in dict(counters.incidents).items():
            incidents.add_metric([camera, rule], count)
    return [
        *(input_fps, analysed_fps, lag, state, reconnects, keyframes_only),
        *(connected, stream_fps, bitrate, stream_reconnects),
        *(analysed, gated, detected, incidents),
    ]


def _outbox_families(outbox: OutboxLike) -> list[Metric]:
    depth = GaugeMetricFamily("gridwarden_edge_outbox_depth", "Events stored and not yet acknowledged")
    depth.add_metric([], outbox.depth())
    dropped = CounterMetricFamily(
        "gridwarden_edge_outbox_dropped", "Updated events dropped because the outbox was full"
    )
    dropped.add_metric([], outbox.dropped())
    return [depth, dropped]


# --------------------------------------------------------------------------- hub


class HubMetrics:
    """The hub's metrics: attach the ingest statistics, the database and the case queries (those
    live in :mod:`gridwarden.hub.case_stats`; :func:`gridwarden.hub.app.build_hub` wires them).

    >>> metrics = HubMetrics()
    >>> metrics.instrument_engine(db.engine)                                 # doctest: +SKIP
    >>> metrics.watch_ingest(ingestor.stats)                                 # doctest: +SKIP
    >>> metrics.watch_cases(case_counts_by_state(db))                        # doctest: +SKIP
    >>> metrics.watch_sla(sla_overdue_counts(db, target_s=600))              # doctest: +SKIP
    >>> add_metrics_route(app, metrics.registry)                             # doctest: +SKIP
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else new_registry()
        self.db_statement_seconds = Histogram(
            "gridwarden_hub_db_statement_seconds",
            "Wall time of one SQL statement, by its first keyword",
            labelnames=["operation"],
            buckets=DB_BUCKETS,
            registry=self.registry,
        )
        self._sources = _SourceCollector()
        self.registry.register(self._sources)
        self._sources.add("refusals", _refusal_families)

    def watch_ingest(self, stats: Callable[[], Mapping[str, Any]]) -> None:
        """``stats``: a snapshot like ``HubIngestor.stats()`` (stored, duplicates, rejected_by_reason...)."""
        self._sources.add("ingest", lambda: _ingest_families(stats()))

    def watch_cases(
        self, counts_by_state: Callable[[], Mapping[str, int]], states: Sequence[str] = ()
    ) -> None:
        """``counts_by_state`` runs at each scrape; ``states`` are reported as 0 when absent."""

        def read() -> list[Metric]:
            counts = dict.fromkeys(states, 0) | dict(counts_by_state())
            family = GaugeMetricFamily("gridwarden_hub_cases", "Cases in each state", labels=["state"])
            for state, n in sorted(counts.items()):
                family.add_metric([state], n)
            return [family]

        self._sources.add("cases", read)

    def watch_sla(self, overdue_by_milestone: Callable[[], Mapping[str, int]]) -> None:
        def read() -> list[Metric]:
            family = GaugeMetricFamily(
                "gridwarden_hub_sla_overdue_cases",
                "Cases whose SLA clock for the milestone still runs and is past its target",
                labels=["milestone"],
            )
            for milestone, n in overdue_by_milestone().items():
                family.add_metric([milestone], n)
            return [family]

        self._sources.add("sla", read)

    def instrument_engine(self, engine: Engine) -> None:
        """Time every statement on ``engine`` (and the engines derived from it with options)."""
        from sqlalchemy import event

        histogram = self.db_statement_seconds

        def before(
            _conn: Any, _cursor: Any, _statement: str, _params: Any, context: Any, _many: bool
        ) -> None:
            if context is not None:
                context._gw_started = time.perf_counter()

        def after(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
            started = getattr(context, "_gw_started", None)
            if started is not None:
                histogram.labels(sql_operation(statement)).observe(time.perf_counter() - started)

        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)


def _refusal_families() -> list[Metric]:
    """The hub's refusal counters (:mod:`gridwarden.hub.security_counters`), every name always
    present so a dashboard's query has a series before the first refusal."""
    from gridwarden.hub import security_counters

    counts = security_counters.snapshot()
    families: list[Metric] = []
    for name, (help_text, labels) in security_counters.METRICS.items():
        family = CounterMetricFamily(name.removesuffix("_total"), help_text, labels=list(labels))
        values = counts.get(name, {})
        if not values and not labels:
            values = {(): 0}
        for key, n in sorted(values.items()):
            family.add_metric(list(key), n)
        families.append(family)
    return families


def sql_operation(statement: str) -> str:
    """The statement's first keyword, from a small fixed set (bounded label values)."""
    head = statement.lstrip().split(None, 1)
    word = head[0].lower() if head else ""
    return word if word in _SQL_OPERATIONS else "other"


def _ingest_families(stats: Mapping[str, Any]) -> list[Metric]:
    messages = CounterMetricFamily(
        "gridwarden_hub_ingest_messages",
        "MQTT messages handled by this hub process, by outcome (and reason when rejected)",
        labels=["outcome", "reason"],
    )
    for outcome, key in (
        ("stored", "stored"),
        ("duplicate", "duplicates"),
        ("status", "status"),
        ("ignored", "ignored"),
    ):
        messages.add_metric([outcome, ""], stats.get(key, 0))
    by_reason: Mapping[str, int] = stats.get("rejected_by_reason", {})
    for reason, n in sorted(by_reason.items()):
        messages.add_metric(["rejected", reason], n)
    unexplained = stats.get("rejected", 0) - sum(by_reason.values())
    if unexplained > 0:
        messages.add_metric(["rejected", "unknown"], unexplained)
    families: list[Metric] = [messages]
    for name, key, doc in (
        ("gridwarden_hub_ingest_gaps", "gaps", "Messages that revealed missing edge sequence numbers"),
        ("gridwarden_hub_ingest_missing_seqs", "missing_seqs", "Edge sequence numbers found missing"),
        ("gridwarden_hub_ingest_db_errors", "db_errors", "Batches that failed to store and were retried"),
        ("gridwarden_hub_mqtt_connects", "connects", "Successful connections to the broker"),
        # The hub's resend requests (``ReplayRequest`` on the wire); the metric names keep the
        # older "replay" word so existing dashboards and alerts keep working.
        (
            "gridwarden_hub_replay_requests",
            "resend_requests",
            "Resend requests (ReplayRequest) sent to edges for lost events",
        ),
        ("gridwarden_hub_replay_seqs_requested", "resend_seqs_requested", "Sequence numbers asked for again"),
    ):
        family = CounterMetricFamily(name, doc)
        family.add_metric([], stats.get(key, 0))
        families.append(family)
    batch = SummaryMetricFamily(
        "gridwarden_hub_ingest_batch_seconds", "Time to store and commit one ingest batch"
    )
    batch.add_metric(
        [], count_value=stats.get("batches", 0), sum_value=stats.get("commit_ms_total", 0) / 1000
    )
    families.append(batch)
    return families
