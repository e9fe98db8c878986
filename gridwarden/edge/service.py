"""``gridwarden edge run``: the edge as a long-running service.

Wires configuration → detector → :class:`EdgeRunner` → durable outbox → MQTT, and stops
cleanly on SIGTERM/SIGINT (systemd's stop). Without an ``mqtt`` section the events go to stdout
as JSON lines, which is handy on a bench.

With ``evidence`` enabled and a ``hub`` section, clips and snapshots are spooled under
``<data_dir>/evidence-spool`` and uploaded to the hub by :class:`EvidenceUploader` with the token
read from ``hub.token_file``. Stop order: cameras (pending clips are written and announced), then
the uploader (unsent files stay spooled for the next start), then the publisher.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gridwarden.contract import IncidentEvent
from gridwarden.edge.analytics.model_loader import build_detector
from gridwarden.edge.capture.evidence import EvidenceUploader
from gridwarden.edge.config import EdgeConfig
from gridwarden.edge.runner import EdgeRunner

if TYPE_CHECKING:
    from gridwarden.edge.transport.config_sync import ConfigSync
    from gridwarden.edge.transport.publisher import IncidentPublisher, MqttSettings

log = logging.getLogger(__name__)

EXIT_CONFIG = 2


def build_evidence_uploader(config: EdgeConfig) -> EvidenceUploader | None:
    """The uploader for ``config.hub`` (not started), or None without a hub section.

    Raises ``ValueError`` naming the file when the token cannot be read.
    """
    if config.hub is None:
        if config.evidence_enabled:
            log.warning(
                "evidence is enabled but no hub is configured: files stay in %s and are never pruned",
                config.evidence_dir(),
            )
        return None
    hub = config.hub
    return EvidenceUploader(
        spool_dir=Path(config.data_dir) / "evidence-spool",
        hub_url=hub.url,
        token=hub.read_token(),
        max_spool_bytes=hub.spool_max_bytes,
        verify=hub.tls_ca or True,
    )


def run_edge(config: EdgeConfig, *, stop: threading.Event | None = None) -> int:
    """Run until ``stop`` is set or a termination signal arrives; return an exit status."""
    from gridwarden.observability import (
        EdgeMetrics,
        Liveness,
        MetricsServer,
        SystemdNotifier,
        Watchdog,
        heartbeats,
        listen_address,
    )

    stop = stop or threading.Event()
    try:
        uploader = build_evidence_uploader(config)
        hub_token = config.hub.read_token() if config.hub is not None else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    detector = build_detector(config)
    notifier = SystemdNotifier()
    metrics = EdgeMetrics(edge_id=config.edge_id)
    if detector is not None:
        metrics.instrument_detector(detector)
    publisher = None
    outbox = None
    if config.mqtt is not None:
        from gridwarden.edge.transport.outbox import Outbox
        from gridwarden.edge.transport.publisher import IncidentPublisher, MqttSettings

        data_dir = Path(config.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        outbox = Outbox(
            data_dir / "outbox.sqlite3",
            max_rows=config.outbox_max_rows,
            retain_acked_s=config.outbox_retain_acked_s,
        )
        m = config.mqtt
        mqtt_settings = MqttSettings(
            host=m.host,
            port=m.port,
            username=m.username,
            password=m.password,
            tls_ca=m.tls_ca,
            tls_cert=m.tls_cert,
            tls_key=m.tls_key,
            keepalive=m.keepalive,
        )
        publisher = IncidentPublisher(
            site=config.site,
            edge_id=config.edge_id,
            outbox=outbox,
            mqtt=mqtt_settings,
            status_interval_s=config.status_interval_s,
        )
        publisher.start()

        def sink(event: IncidentEvent) -> object:
            return publisher.publish_incident(event)

        status_sink = publisher.publish_camera_status
    else:

        def sink(event: IncidentEvent) -> object:
            print(event.model_dump_json(), flush=True)
            return None

        status_sink = None

    snapshots = None
    if config.hub is not None and hub_token is not None:
        # The zone editor draws on each camera's latest picture: one at start, then every 5 min.
        from gridwarden.edge.capture.camera_snapshots import CameraSnapshotUploader

        snapshots = CameraSnapshotUploader(config.hub.url, hub_token, 300.0, edge_id=config.edge_id)
        snapshots.start()
    registrar = None
    if config.hub is not None and hub_token is not None:
        # A new edge's configuration becomes version 1 at the hub (editable in the console).
        from gridwarden.edge.transport.config_register import RunningConfigRegistrar

        registrar = RunningConfigRegistrar(config, hub_token)
        registrar.start()
    liveness = Liveness(max_age_s=30.0)
    runner = EdgeRunner(
        config,
        detector=detector,
        sink=sink,
        status_sink=status_sink,
        heartbeat=heartbeats(liveness, Watchdog(notifier)),
        evidence_uploader=uploader,
        on_result=None if snapshots is None else (lambda _a, r: snapshots.offer(r.frame.camera_id, r.frame)),
    )
    metrics.watch_runner(runner)
    metrics.watch_liveness(liveness)
    if outbox is not None:
        metrics.watch_outbox(outbox)
    metrics_server = None
    if (address := listen_address()) is not None:
        metrics_server = MetricsServer(metrics.registry, liveness, host=address[0], port=address[1])
        metrics_server.start()
        log.info("metrics and health on %s", metrics_server.url)
    _install_signal_handlers(stop)
    if uploader is not None:
        uploader.start()
    runner.start()
    config_sync = None
    if publisher is not None:
        config_sync = _start_config_sync(
            config, mqtt_settings, runner, publisher, None if snapshots is None else snapshots.request
        )
    notifier.ready(f"{len(runner.workers)} cameras started")
    try:
        while not stop.wait(1.0):
            pass
    finally:
        notifier.stopping("stopping")
        log.info("edge %s stopping", config.edge_id)
        if config_sync is not None:
            config_sync.stop()
        runner.stop()
        if snapshots is not None:
            snapshots.stop()
        if registrar is not None:
            registrar.stop(timeout_s=1.0)
        if uploader is not None:
            uploader.close()
        if publisher is not None:
            publisher.stop()
        if outbox is not None:
            outbox.close()
        if metrics_server is not None:
            metrics_server.stop()
    return 0


def _start_config_sync(
    config: EdgeConfig,
    mqtt_settings: MqttSettings,
    runner: EdgeRunner,
    publisher: IncidentPublisher,
    on_snapshot_request: Callable[[str | None], None] | None,
) -> ConfigSync:
    """Follow the hub's retained configuration topic and apply new versions to the running edge
    (zones and rules live; a changed camera list or model is logged as needing a restart)."""
    from gridwarden.edge.transport.config_sync import ConfigSync, apply_to_runner

    def on_config(new_config: EdgeConfig, version: int) -> None:
        result = apply_to_runner(runner, new_config)
        publisher.set_config_version(str(version))
        log.info("configuration version %d applied: %s", version, result)

    sync = ConfigSync(
        config.site,
        config.edge_id,
        mqtt_settings,
        on_config=on_config,
        state_dir=Path(config.data_dir) / "config",
    )
    sync.start()
    return sync


def _install_signal_handlers(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, _frame: object) -> None:
        log.info("received signal %d", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def main_from_cli(config_path: str) -> int:
    from gridwarden.edge.config import load_edge_config
    from gridwarden.observability import configure_logging

    configure_logging("INFO")
    return run_edge(load_edge_config(config_path))
