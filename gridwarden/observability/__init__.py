"""Appliance plumbing shared by edge and hub: metrics, structured logs, systemd notification.

Modules, one job each:

* :mod:`.metrics` — Prometheus collectors that read the runner, outbox, ingestor and database at
  scrape time (:class:`EdgeMetrics`, :class:`HubMetrics`);
* :mod:`.http` — the edge's ``/metrics`` + ``/healthz`` server and the hub's ``/metrics`` route;
* :mod:`.liveness` — the analysis loop's heartbeat that ``/healthz`` judges;
* :mod:`.sdnotify` — ``READY``/``STATUS``/``STOPPING``/``WATCHDOG`` to systemd;
* :mod:`.logging` — JSON lines off a terminal, readable lines on one.
"""

from gridwarden.observability.http import MetricsServer, add_metrics_route, listen_address
from gridwarden.observability.liveness import Liveness, heartbeats
from gridwarden.observability.logging import configure_logging
from gridwarden.observability.metrics import (
    EdgeMetrics,
    HubMetrics,
    new_registry,
)
from gridwarden.observability.sdnotify import (
    SystemdNotifier,
    Watchdog,
    WatchdogPinger,
    http_probe,
    notify_ready_when,
)

__all__ = [
    "EdgeMetrics",
    "HubMetrics",
    "Liveness",
    "MetricsServer",
    "SystemdNotifier",
    "Watchdog",
    "WatchdogPinger",
    "add_metrics_route",
    "configure_logging",
    "heartbeats",
    "http_probe",
    "listen_address",
    "new_registry",
    "notify_ready_when",
]
