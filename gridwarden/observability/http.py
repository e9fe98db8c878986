"""HTTP exposure of the metrics: a tiny server for the edge, a route for the hub's FastAPI app.

Why the edge gets its own ``http.server`` instead of a web framework: the edge serves exactly two
paths to a scraper and a probe, and must not pull the hub's web stack onto a small box. It runs
on daemon threads, so it never delays shutdown, and ``/healthz`` judges the analysis loop's
heartbeat (:class:`~gridwarden.observability.liveness.Liveness`), not merely that the process
answers: the server's thread keeps answering while a stuck loop does not beat.

>>> server = MetricsServer(metrics.registry, liveness, host="0.0.0.0", port=9464)   # doctest: +SKIP
>>> server.start(); ...; server.stop()                                              # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from gridwarden.observability.liveness import Liveness

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

LISTEN_ENV = "GRIDWARDEN_METRICS_LISTEN"
DEFAULT_PORT = 9464  # the port range Prometheus exporters conventionally use


def render_metrics(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The exposition body and its content type, in the format the scraper asked for."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def health_report(liveness: Liveness | None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) for ``/healthz``: 200 while the loop beat within ``max_age_s``."""
    if liveness is None:
        return 200, {"status": "ok"}
    age = liveness.age_s()
    body: dict[str, Any] = {
        "heartbeat_age_s": None if age is None else round(age, 3),
        "max_age_s": liveness.max_age_s,
    }
    if age is None:
        return 503, {"status": "starting", **body}
    if age > liveness.max_age_s:
        return 503, {"status": "stalled", **body}
    return 200, {"status": "ok", **body}


class MetricsServer:
    """Serves ``/metrics`` (Prometheus) and ``/healthz`` (loop liveness) on ``host:port``.

    ``port=0`` picks a free port; read it from :attr:`port` after :meth:`start`.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        liveness: Liveness | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
    ) -> None:
        self.registry = registry
        self.liveness = liveness
        self.host = host
        self.requested_port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("MetricsServer is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def start(self) -> None:
        """Bind and serve on a daemon thread; raises OSError if the address is taken."""
        handler = _make_handler(self.registry, self.liveness)
        server_class = _ThreadingHTTPServerV6 if ":" in self.host else ThreadingHTTPServer
        self._server = server_class((self.host, self.requested_port), handler)
        self._server.daemon_threads = True
        server = self._server
        # A short poll keeps stop() quick; the idle cost is ten select() wake-ups a second.
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.1), name="metrics-http", daemon=True
        )
        self._thread.start()
        log.info("metrics and health on %s/metrics and /healthz", self.url)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5.0)


class _ThreadingHTTPServerV6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _make_handler(registry: CollectorRegistry, liveness: Liveness | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "gridwarden-metrics"

        def do_GET(self) -> None:  # noqa: N802 (the name http.server dispatches to)
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                try:
                    body, content_type = render_metrics(registry, self.headers.get("Accept"))
                except Exception:
                    log.exception("rendering metrics failed")
                    self._send(500, b"metrics failed\n", "text/plain; charset=utf-8")
                    return
                self._send(200, body, content_type)
            elif path == "/healthz":
                status, report = health_report(liveness)
                self._send(status, json.dumps(report).encode() + b"\n", "application/json")
            else:
                self._send(404, b"not found: try /metrics or /healthz\n", "text/plain; charset=utf-8")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (signature of the base)
            log.debug("metrics http: " + format, *args)

    return Handler


def listen_address(
    environ: Mapping[str, str] | None = None, *, default: str | None = None
) -> tuple[str, int] | None:
    """Where to serve metrics, from ``$GRIDWARDEN_METRICS_LISTEN`` (or ``default``).

    Accepts ``HOST:PORT``, ``:PORT`` or ``PORT`` (loopback), ``[v6]:PORT``; ``off`` or empty
    disables the server (returns None).

    >>> listen_address({"GRIDWARDEN_METRICS_LISTEN": "0.0.0.0:9464"})
    ('0.0.0.0', 9464)
    >>> listen_address({"GRIDWARDEN_METRICS_LISTEN": "9100"})
    ('127.0.0.1', 9100)
    """
    env = os.environ if environ is None else environ
    raw = env.get(LISTEN_ENV, default or "").strip()
    if not raw or raw.lower() == "off":
        return None
    host, sep, port_text = raw.rpartition(":")
    if not sep:
        host, port_text = "", raw
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"{LISTEN_ENV}={raw!r}: expected HOST:PORT, :PORT or PORT") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"{LISTEN_ENV}={raw!r}: port must be within 0..65535")
    return host, port


def add_metrics_route(app: FastAPI, registry: CollectorRegistry, path: str = "/metrics") -> None:
    """Add ``GET /metrics`` to a FastAPI app (no authentication, like ``/healthz``).

    A plain (sync) endpoint on purpose: Starlette runs it on its thread pool, so the scrape-time
    database queries of the case collectors never block the event loop.
    """
    from starlette.requests import Request
    from starlette.responses import Response

    def metrics(request: Request) -> Response:
        body, content_type = render_metrics(registry, request.headers.get("accept"))
        return Response(content=body, headers={"Content-Type": content_type})

    # A plain Starlette route: no dependency injection to resolve, and still run on the thread pool.
    app.router.add_route(path, metrics, methods=["GET"], include_in_schema=False)
