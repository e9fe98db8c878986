"""Process-wide counters of refused or throttled requests, exported in the hub's ``/metrics``.

The API's routers refuse hostile or broken input in many places (an upload that is not a JPEG,
an edge over its quota, a throttled log-in); each refusal is counted here under a fixed metric
name and a small, bounded set of label values, so an operator sees an attack or a misbehaving
edge on a dashboard instead of only in logs. :class:`~gridwarden.observability.HubMetrics`
reads :func:`snapshot` at each scrape.

>>> count("gridwarden_hub_uploads_refused_total", reason="doctest")
>>> snapshot()["gridwarden_hub_uploads_refused_total"][("doctest",)] >= 1
True
"""

from __future__ import annotations

import threading
from collections import defaultdict

# metric name -> (help text, label names). Only these names may be counted.
METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "gridwarden_hub_uploads_refused_total": (
        "Evidence and snapshot uploads refused, by reason (invalid_media, too_large, quota_exceeded, wrong_edge, ...)",
        ("reason",),
    ),
    "gridwarden_hub_login_throttled_total": (
        "Console log-ins refused because the account or the client address is throttled",
        ("scope",),
    ),
    "gridwarden_hub_login_failures_total": ("Console log-ins with a wrong user name or password", ()),
    "gridwarden_hub_dead_letters_total": (
        "MQTT messages the hub could not store, kept in dead_letters and acknowledged, by reason",
        ("reason",),
    ),
    "gridwarden_hub_reports_refused_total": (
        "Public resident reports refused, by reason (rate_client, rate_point, bad_photo, too_large, ...)",
        ("reason",),
    ),
    "gridwarden_hub_reports_total": (
        "Public resident reports accepted, by outcome (opened, joined)",
        ("outcome",),
    ),
}

_lock = threading.Lock()
_counts: dict[str, dict[tuple[str, ...], int]] = defaultdict(lambda: defaultdict(int))


def count(name: str, n: int = 1, **labels: str) -> None:
    help_text, label_names = METRICS[name]
    key = tuple(str(labels[label]) for label in label_names)
    with _lock:
        _counts[name][key] += n


def snapshot() -> dict[str, dict[tuple[str, ...], int]]:
    with _lock:
        return {name: dict(values) for name, values in _counts.items()}
