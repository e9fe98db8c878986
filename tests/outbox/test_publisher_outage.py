"""End to end: 1,000 events through a broker outage and a SIGKILLed edge, seen by a plain
persistent-session subscriber. At least once on the wire, exactly once after de-duplication by
(edge_id, seq), in order per incident, and an empty outbox at the end."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from gridwarden.contract import EdgeStatus, IncidentEvent, Topics
from gridwarden.edge.transport.outbox import Outbox
from tests.outbox.events import EDGE_ID, EVENTS_PER_INCIDENT, SITE
from tests.outbox.hub_probe import HubSubscriber, read_retained
from tests.support.mosquitto import MosquittoBroker
from tests.support.paths import REPO_ROOT

TOPICS = Topics(SITE, EDGE_ID)
COUNT = 1000
KEEPALIVE_S = 2  # the broker declares the edge dead after 1.5 x keepalive
OUTAGE_S = 10.0


def _start_edge(
    outbox_path: Path,
    port: int,
    log_path: Path,
    count: int = COUNT,
    rate: float = 100.0,
    extra_args: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.outbox.edge_publisher_proc",
            str(outbox_path),
            str(port),
            "--count",
            str(count),
            "--rate",
            str(rate),
            "--keepalive",
            str(KEEPALIVE_S),
            *extra_args,
        ],
        cwd=REPO_ROOT,
        stdout=log,
        stderr=log,
    )


def _distinct_seqs(hub: HubSubscriber) -> set[int]:
    return {IncidentEvent.model_validate_json(m.payload).seq for m in hub.snapshot(TOPICS.incidents)}


def _edge_status(port: int) -> EdgeStatus | None:
    payload = read_retained(port, TOPICS.status, timeout=1.0)
    return EdgeStatus.model_validate_json(payload) if payload else None


def _wait_status(port: int, online: bool, timeout: float) -> EdgeStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _edge_status(port)
        if status is not None and status.online is online:
            return status
        time.sleep(0.2)
    raise AssertionError(f"retained edge status never became online={online} within {timeout}s")


@pytest.mark.slow
def test_thousand_events_survive_a_broker_outage_and_a_sigkilled_edge(
    tmp_path: Path, persistent_broker: MosquittoBroker
) -> None:
    broker = persistent_broker
    outbox_path = tmp_path / "edge-outbox.sqlite3"
    edge_log = tmp_path / "edge.log"
    hub = HubSubscriber(broker.port, [TOPICS.incidents], client_id="hub-outage")
    hub.start()  # before the edge: its persistent session must catch everything
    edge = _start_edge(outbox_path, broker.port, edge_log)
    try:
        # Phase 1: running normally, then SIGKILL the edge mid-stream.
        hub.wait_for(lambda: len(_distinct_seqs(hub)) >= 150, 30, "first 150 events")
        assert _wait_status(broker.port, online=True, timeout=5).outbox_depth is not None
        edge.send_signal(signal.SIGKILL)
        edge.wait(timeout=10)
        # The Last Will: a SIGKILLed process cannot say goodbye, so only the broker can set the
        # retained status offline -- at once when the kernel closes the socket, at the latest when
        # the keepalive (1.5 x KEEPALIVE_S) expires. The will carries no outbox depth.
        will = _wait_status(broker.port, online=False, timeout=KEEPALIVE_S * 1.5 + 8)
        assert will.outbox_depth is None and will.edge_id == EDGE_ID
        seen_before_restart = len(_distinct_seqs(hub))
        assert seen_before_restart < COUNT

        # Phase 2: restart on the same outbox; then take the broker away for OUTAGE_S.
        edge = _start_edge(outbox_path, broker.port, edge_log)
        hub.wait_for(
            lambda: len(_distinct_seqs(hub)) >= seen_before_restart + 150, 30, "150 events after restart"
        )
        broker.stop()
        time.sleep(OUTAGE_S)
        broker.start()

        assert edge.wait(timeout=60) == 0, edge_log.read_text()[-3000:]
        hub.wait_for(lambda: len(_distinct_seqs(hub)) >= COUNT, 30, f"all {COUNT} seqs at the hub")
    finally:
        if edge.poll() is None:
            edge.kill()
            edge.wait()
        hub.stop()

    received = [IncidentEvent.model_validate_json(m.payload) for m in hub.snapshot(TOPICS.incidents)]
    first_seen: dict[tuple[str, int], IncidentEvent] = {}
    for event in received:
        first_seen.setdefault((event.edge_id, event.seq), event)
    assert sorted(seq for _, seq in first_seen) == list(range(1, COUNT + 1))
    assert len(received) >= COUNT  # duplicates allowed on the wire (and expected after the kill)

    # In order per incident, by first arrival, with the lifecycle intact.
    per_incident: dict[str, list[IncidentEvent]] = defaultdict(list)
    for event in first_seen.values():  # dicts keep first-arrival order
        per_incident[event.incident_id].append(event)
    assert len(per_incident) == COUNT // EVENTS_PER_INCIDENT
    for incident_id, events in per_incident.items():
        seqs = [e.seq for e in events]
        assert seqs == sorted(seqs), f"{incident_id} arrived out of order: {seqs}"
        kinds = [e.event for e in events]
        assert kinds[0] == "started" and kinds[-1] == "ended" and set(kinds[1:-1]) == {"updated"}, incident_id
        # A duplicate is the same event, byte for byte apart from transport.
    for event in received:
        assert event == first_seen[(event.edge_id, event.seq)]

    with Outbox(outbox_path) as outbox:
        assert outbox.depth() == 0
        assert outbox.last_seq() == COUNT
        assert outbox.dropped() == 0
    log = edge_log.read_text()
    assert log.count("resuming at event 0") == 1 and "drained" in log


@pytest.mark.slow
def test_last_will_marks_a_frozen_edge_offline_after_keepalive_expiry(
    tmp_path: Path, persistent_broker: MosquittoBroker
) -> None:
    """SIGSTOP keeps the edge's socket open but silent -- a hung box or a dead link, not a
    crash -- so only the broker's keepalive timer can notice. After SIGCONT the edge finds its
    connection gone, reconnects and announces itself online again."""
    broker = persistent_broker
    edge = _start_edge(tmp_path / "o.db", broker.port, tmp_path / "edge.log", count=100_000, rate=5)
    try:
        _wait_status(broker.port, online=True, timeout=15)
        edge.send_signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        will = _wait_status(broker.port, online=False, timeout=KEEPALIVE_S * 1.5 + 8)
        # Not before the keepalive could have expired (the broker allows 1.5 x keepalive).
        assert time.monotonic() - frozen_at >= KEEPALIVE_S
        assert will.outbox_depth is None
        edge.send_signal(signal.SIGCONT)
        back = _wait_status(broker.port, online=True, timeout=15)
        assert back.wall_time > will.wall_time
    finally:
        edge.send_signal(signal.SIGCONT)
        edge.kill()
        edge.wait(timeout=10)
