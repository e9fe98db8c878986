"""sd_notify over a real AF_UNIX datagram socket, as systemd would receive it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from gridwarden.observability.sdnotify import (
    SystemdNotifier,
    Watchdog,
    WatchdogPinger,
    http_probe,
    notify_ready_when,
)
from tests.appliance.conftest import NotifyListener


class StepClock:
    """A clock the test advances by hand, so rate limiting is checked exactly."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ready_status_stopping_arrive_as_datagrams(notify_socket: NotifyListener) -> None:
    notifier = SystemdNotifier(environ={"NOTIFY_SOCKET": notify_socket.address})
    assert notifier.enabled
    assert notifier.ready("3 cameras\nonline")
    assert notifier.status("lag 0.2 s")
    assert notifier.stopping()
    assert notify_socket.collect(0.5) == [
        "READY=1\nSTATUS=3 cameras online",  # a newline in a status would start a new assignment
        "STATUS=lag 0.2 s",
        "STOPPING=1",
    ]
    notifier.close()


def test_abstract_namespace_socket(abstract_notify_socket: NotifyListener) -> None:
    notifier = SystemdNotifier(environ={"NOTIFY_SOCKET": abstract_notify_socket.address})
    assert notifier.ready()
    assert abstract_notify_socket.collect(0.5) == ["READY=1"]


def test_everything_is_a_no_op_outside_systemd() -> None:
    notifier = SystemdNotifier(environ={})
    assert not notifier.enabled
    assert notifier.ready("x") is False
    watchdog = Watchdog(notifier, environ={"WATCHDOG_USEC": "30000000"})
    assert not watchdog.enabled
    assert watchdog.beat() is False


def test_a_vanished_socket_is_reported_not_raised(tmp_path) -> None:
    notifier = SystemdNotifier(socket_path=str(tmp_path / "gone"))
    assert notifier.enabled
    assert notifier.ready() is False  # logged once; the service keeps running


def test_bad_socket_name_and_bad_assignment_are_clear_errors(notify_socket: NotifyListener) -> None:
    with pytest.raises(ValueError, match="absolute path"):
        SystemdNotifier(socket_path="relative/notify")
    with pytest.raises(ValueError, match="KEY=value"):
        SystemdNotifier(socket_path=notify_socket.address).notify("READY")


def test_watchdog_sends_at_most_every_half_interval(notify_socket: NotifyListener) -> None:
    clock = StepClock()
    env = {
        "NOTIFY_SOCKET": notify_socket.address,
        "WATCHDOG_USEC": "30000000",
        "WATCHDOG_PID": str(os.getpid()),
    }
    watchdog = Watchdog(environ=env, clock=clock)
    assert watchdog.enabled and watchdog.interval_s == 15.0
    sent = []
    for _ in range(100):  # a loop iterating every 0.5 s for 50 s
        sent.append(watchdog.beat())
        clock.now += 0.5
    assert sum(sent) == 4  # at 0, 15, 30 and 45 s
    assert [i for i, s in enumerate(sent) if s] == [0, 30, 60, 90]
    assert notify_socket.collect(0.5) == ["WATCHDOG=1"] * 4
    assert watchdog.sent == 4


def test_watchdog_in_real_time_bounds_the_rate(notify_socket: NotifyListener) -> None:
    watchdog = Watchdog(SystemdNotifier(socket_path=notify_socket.address), usec=200_000)  # every 0.1 s
    started = time.monotonic()
    calls = 0
    while time.monotonic() - started < 0.55:
        watchdog.beat()
        calls += 1
    received = notify_socket.collect(0.3)
    assert calls > 1000  # the loop spun far faster than it was allowed to send
    # at most ceil(0.55 / 0.1) = 6; scheduling on a busy machine may make it fewer, never more
    assert 3 <= len(received) <= 6
    assert set(received) == {"WATCHDOG=1"}


def test_watchdog_for_another_pid_is_disabled(notify_socket: NotifyListener) -> None:
    env = {"NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    assert not Watchdog(environ=env).enabled
    assert not Watchdog(environ={**env, "WATCHDOG_USEC": "soon", "WATCHDOG_PID": ""}).enabled


def test_a_hung_child_stops_beating(notify_socket: NotifyListener) -> None:
    """A process whose loop hangs stops sending WATCHDOG=1 — what lets systemd restart it."""
    child = (
        "import time\n"
        "from gridwarden.observability.sdnotify import SystemdNotifier, Watchdog\n"
        "n = SystemdNotifier(); w = Watchdog(n); n.ready('looping')\n"
        "end = time.monotonic() + 0.6\n"
        "while time.monotonic() < end:\n"
        "    w.beat(); time.sleep(0.01)\n"
        "n.status('hung'); time.sleep(30)\n"  # the 'pipeline' is stuck from here on
    )
    # WATCHDOG_PID unset: the child takes the watchdog variables as meant for itself.
    env = {**os.environ, "NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "200000"}
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen([sys.executable, "-c", child], env=env)
    try:
        before = notify_socket.wait_for("STATUS=hung", timeout=20)
        assert before[0] == "READY=1\nSTATUS=looping"
        assert 3 <= before.count("WATCHDOG=1") <= 7  # every 0.1 s for 0.6 s
        assert notify_socket.collect(0.6) == []  # hung: no keep-alive, systemd would kill it
    finally:
        proc.kill()
        proc.wait()


def test_pinger_beats_only_while_the_probe_passes(notify_socket: NotifyListener) -> None:
    healthy = threading.Event()
    healthy.set()
    watchdog = Watchdog(SystemdNotifier(socket_path=notify_socket.address), usec=100_000)
    pinger = WatchdogPinger(watchdog, healthy.is_set, period_s=0.02)
    pinger.start()
    try:
        assert len(notify_socket.collect(0.5)) >= 2
        healthy.clear()
        time.sleep(0.1)  # let a beat that was in flight land
        notify_socket.drain()
        assert notify_socket.collect(0.4) == []
        assert pinger.failures > 0
        healthy.set()
        notify_socket.wait_for("WATCHDOG=1", timeout=5)
    finally:
        pinger.stop()


def test_http_probe_against_a_real_server() -> None:
    from gridwarden.observability.http import MetricsServer
    from gridwarden.observability.liveness import Liveness
    from gridwarden.observability.metrics import new_registry

    live = Liveness(max_age_s=60)
    server = MetricsServer(new_registry(), live, port=0)
    server.start()
    try:
        probe = http_probe(f"{server.url}/healthz", timeout_s=2)
        assert probe() is False  # no heartbeat yet: 503
        live.beat()
        assert probe() is True
    finally:
        server.stop()
    assert probe() is False  # nothing listening


def test_ready_is_sent_once_the_server_has_started(notify_socket: NotifyListener) -> None:
    started = threading.Event()
    then_called = threading.Event()
    notifier = SystemdNotifier(socket_path=notify_socket.address)
    thread = notify_ready_when(started.is_set, notifier, status="serving", then=then_called.set, poll_s=0.01)
    assert notify_socket.collect(0.2) == []
    started.set()
    assert notify_socket.wait_for("READY=1", timeout=5) == ["READY=1\nSTATUS=serving"]
    thread.join(2)
    assert then_called.is_set()

    gave_up = notify_ready_when(lambda: False, notifier, give_up=lambda: True, poll_s=0.01)
    gave_up.join(2)
    assert not gave_up.is_alive()
    assert notify_socket.collect(0.2) == []
