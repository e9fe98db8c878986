"""Tell systemd how the service is doing: READY, STATUS, STOPPING and watchdog keep-alives.

Why: with ``Type=notify`` systemd considers the unit started only when the process says
``READY=1`` (after the model is loaded and the cameras are started), and with ``WatchdogSec=``
it kills and restarts a process that stops sending ``WATCHDOG=1``. The keep-alive must come from
the *processing loop*, not from a timer thread: a timer thread keeps beating while the pipeline
is stuck in a hung read or a deadlock, which is exactly the failure the watchdog is there for.

The protocol (``sd_notify(3)``) is one datagram of ``KEY=value`` lines sent to the AF_UNIX socket
named by ``$NOTIFY_SOCKET``; a name starting with ``@`` is in the abstract namespace (leading NUL
byte). Everything here is a no-op when that variable is unset, so the same code runs on a bench,
in tests and under systemd.

>>> notifier = SystemdNotifier()          # reads $NOTIFY_SOCKET
>>> notifier.ready("3 cameras online")    # False outside systemd: nothing was sent
False
>>> watchdog = Watchdog(notifier)         # reads $WATCHDOG_USEC; beat() in the loop
>>> watchdog.enabled
False
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Sends ``sd_notify`` messages to ``$NOTIFY_SOCKET`` (or the given path); thread-safe.

    Send failures are logged once and otherwise ignored: a monitoring side channel must never
    take the service down.
    """

    def __init__(self, socket_path: str | None = None, *, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = socket_path if socket_path is not None else env.get("NOTIFY_SOCKET", "")
        self.socket_path = path or None
        self._address: str | bytes | None = _socket_address(path) if path else None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._warned = False

    @property
    def enabled(self) -> bool:
        """True when a notification socket is configured (i.e. running under ``Type=notify``)."""
        return self._address is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=value`` assignments in one datagram; True if it was sent."""
        if self._address is None or not assignments:
            return False
        for item in assignments:
            if "=" not in item or "\n" in item:
                raise ValueError(f"sd_notify assignment must be one KEY=value line, got {item!r}")
        payload = "\n".join(assignments).encode()
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.sendto(payload, self._address)
            except OSError as exc:
                if not self._warned:
                    log.warning("sd_notify to %s failed: %s", self.socket_path, exc)
                    self._warned = True
                return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """The service finished starting (systemd's start job completes now)."""
        return self.notify("READY=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def status(self, text: str) -> bool:
        """Free-form status shown by ``systemctl status``."""
        return self.notify(f"STATUS={_one_line(text)}")

    def stopping(self, status: str | None = None) -> bool:
        """The service is shutting down (so a slow stop is not mistaken for a hang)."""
        return self.notify("STOPPING=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def watchdog(self) -> bool:
        """One keep-alive; prefer :class:`Watchdog`, which rate-limits these."""
        return self.notify("WATCHDOG=1")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


class Watchdog:
    """Rate-limited ``WATCHDOG=1`` keep-alives driven by the caller's loop.

    Call :meth:`beat` once per iteration of the processing loop; it sends at most one keep-alive
    every ``WATCHDOG_USEC / 2`` (the interval ``sd_watchdog_enabled(3)`` recommends), so a loop
    spinning at hundreds of iterations a second costs one clock read per call. Disabled (every
    call a no-op) when ``$WATCHDOG_USEC`` is unset, or ``$WATCHDOG_PID`` names another process
    (the variables were inherited by a child), or there is no notification socket.

    >>> wd = Watchdog(SystemdNotifier(socket_path=""), usec=30_000_000)
    >>> wd.interval_s, wd.enabled      # no socket: nothing to send to
    (15.0, False)
    """

    def __init__(
        self,
        notifier: SystemdNotifier | None = None,
        *,
        usec: int | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        env = os.environ if environ is None else environ
        self.notifier = notifier if notifier is not None else SystemdNotifier(environ=env)
        if usec is None:
            usec = _watchdog_usec_from_env(env)
        self.usec = usec
        self.interval_s = usec / 2 / 1_000_000 if usec else 0.0
        self.enabled = bool(usec) and self.notifier.enabled
        self.sent = 0
        self._clock = clock
        self._last_sent: float | None = None

    def beat(self) -> bool:
        """Record that the loop is alive; True when a keep-alive was sent by this call."""
        if not self.enabled:
            return False
        now = self._clock()
        last = self._last_sent
        if last is not None and now - last < self.interval_s:
            return False
        # Set before sending: two threads racing here send at most one extra datagram, harmless.
        self._last_sent = now
        if self.notifier.watchdog():
            self.sent += 1
            return True
        return False

    def __call__(self) -> None:
        """So a Watchdog can be passed directly as the runner's ``heartbeat`` callable."""
        self.beat()


class WatchdogPinger:
    """A thread that beats the watchdog only while ``probe()`` says the service is healthy.

    For services without a loop of their own to beat from (the hub: uvicorn owns the main
    thread). The probe must exercise the path that can hang, e.g. an HTTP request to the
    service's own ``/healthz``, which needs the event loop and the database to answer; a probe
    that only checks "the process exists" would defeat the watchdog.
    """

    def __init__(
        self, watchdog: Watchdog, probe: Callable[[], bool], *, period_s: float | None = None
    ) -> None:
        self.watchdog = watchdog
        self.probe = probe
        # Probe twice per keep-alive interval so one slow probe does not miss the deadline.
        self.period_s = period_s if period_s is not None else max(0.1, watchdog.interval_s / 2)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0

    def start(self) -> None:
        if not self.watchdog.enabled:
            return
        self._thread = threading.Thread(target=self._run, name="watchdog-pinger", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                healthy = bool(self.probe())
            except Exception as exc:  # a probe that raises is an unhealthy service, not a crash
                log.warning("watchdog probe failed: %s", exc)
                healthy = False
            if healthy:
                self.watchdog.beat()
            else:
                self.failures += 1
            self._stop.wait(self.period_s)


def notify_ready_when(
    is_ready: Callable[[], bool],
    notifier: SystemdNotifier,
    *,
    status: str | None = None,
    give_up: Callable[[], bool] = lambda: False,
    then: Callable[[], object] | None = None,
    poll_s: float = 0.1,
) -> threading.Thread:
    """Send READY=1 (and call ``then``) from a thread once ``is_ready()`` is true.

    For a server that owns the main thread while it starts, e.g. uvicorn:
    ``notify_ready_when(lambda: server.started, notifier, give_up=lambda: server.should_exit,
    then=pinger.start)``. The thread ends quietly if ``give_up()`` becomes true first.
    """

    def wait() -> None:
        while not is_ready():
            if give_up():
                return
            time.sleep(poll_s)
        notifier.ready(status)
        if then is not None:
            then()

    thread = threading.Thread(target=wait, name="sd-notify-ready", daemon=True)
    thread.start()
    return thread


def http_probe(url: str, timeout_s: float = 5.0) -> Callable[[], bool]:
    """A probe for :class:`WatchdogPinger`: True when GET ``url`` answers 2xx within the timeout."""
    import urllib.error
    import urllib.request

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (local URL)
                return 200 <= response.status < 300
        except (OSError, urllib.error.URLError):
            return False

    return probe


def _socket_address(path: str) -> str | bytes:
    if path.startswith("@"):
        return b"\0" + path[1:].encode()
    if not path.startswith("/"):
        raise ValueError(f"NOTIFY_SOCKET must be an absolute path or start with '@', got {path!r}")
    return path


def _watchdog_usec_from_env(env: Mapping[str, str]) -> int:
    raw = env.get("WATCHDOG_USEC", "")
    if not raw:
        return 0
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid.strip() != str(os.getpid()):
        return 0  # meant for another process (we inherited the environment)
    try:
        usec = int(raw)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not an integer", raw)
        return 0
    return max(usec, 0)


def _one_line(text: str) -> str:
    return " ".join(text.split())
