"""``gridwarden hub serve``: the whole hub in one process — REST API, MQTT ingest, webhooks.

Three parts share one database handle: uvicorn serves :func:`~gridwarden.hub.app.create_app` on
the main thread, :class:`~gridwarden.hub.ingest.HubIngestor` consumes the edges' messages on its
threads, and :class:`~gridwarden.hub.webhooks.WebhookForwarder` (only when ``--webhook-url`` is
given) sends confirmed cases out. SIGTERM or SIGINT stops uvicorn first (no new requests), then
the ingestor (what arrived is stored and acknowledged, the rest stays on the broker), then the
forwarder (undelivered webhooks stay in the outbox), and the process exits 0.

Evidence: the app also serves ``/api/v1/evidence/{sha256}`` (edges PUT clips and snapshots with
an ``edge`` token; staff GET them, with HTTP ranges) from an :class:`EvidenceStore` under
``--evidence-root`` (default: an ``evidence`` folder beside a SQLite database). A daemon thread
applies the retention policy once at start and then hourly; it stops with the process.

Options default to the ``GRIDWARDEN_HUB_*`` environment (see :mod:`gridwarden.hub.settings`).
The webhook secret is read from a file or ``GRIDWARDEN_HUB_WEBHOOK_SECRET``, never from the
command line, where any local user could read it in the process list.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gridwarden.hub.evidence_store import EvidenceStore
    from gridwarden.hub.settings import HubSettings

WEBHOOK_SECRET_ENV = "GRIDWARDEN_HUB_WEBHOOK_SECRET"
WEBHOOK_STATES = ("confirmed",)
EXIT_USAGE = 2
EXIT_RUNTIME = 1  # a worker thread died: systemd restarts the hub
PRUNE_INTERVAL_S = 3600.0

log = logging.getLogger("gridwarden.hub.serve")


def _read_secret(path: str | None, env_name: str) -> bytes | None:
    if path:
        secret = Path(path).read_text().strip()
        if not secret:
            raise ValueError(f"secret file {path} is empty")
        return secret.encode()
    value = os.environ.get(env_name, "").strip()
    return value.encode() if value else None


class EvidencePruner:
    """Applies the store's retention policy now and then every ``interval_s``, on a daemon thread.

    Why a thread in the hub and not a cron job: the single-box install has no other scheduler,
    and a prune that runs where the files are written needs no extra permissions.
    """

    def __init__(self, store: EvidenceStore, interval_s: float = PRUNE_INTERVAL_S) -> None:
        self.store = store
        self.interval_s = interval_s
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="evidence-prune", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            try:
                report = self.store.prune()
                log.info(
                    "evidence retention: removed %d files (%d bytes), kept %d (%d bytes)",
                    report.removed_files, report.removed_bytes, report.kept_files, report.kept_bytes,
                )  # fmt: skip
            except Exception:  # a bad file must not end pruning for good
                log.exception("evidence prune failed; retrying in %.0fs", self.interval_s)
            self.runs += 1
            if self._stop.wait(self.interval_s):
                return


def build_evidence_store(settings: HubSettings) -> EvidenceStore:
    """The evidence store the settings describe (its folder is created)."""
    from gridwarden.hub.evidence_store import EvidenceStore, RetentionPolicy

    return EvidenceStore(
        settings.resolved_evidence_root(),
        max_upload_bytes=settings.evidence_max_upload_bytes,
        quota_bytes_per_edge=settings.evidence_quota_bytes_per_edge,
        retention=RetentionPolicy(
            max_age_days=settings.evidence_retention_days, max_total_bytes=settings.evidence_max_total_bytes
        ),
    )


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gridwarden.hub.api.evidence import build_evidence_router
    from gridwarden.hub.app import create_app
    from gridwarden.hub.auth import Permission
    from gridwarden.hub.cases import STATES, CaseService
    from gridwarden.hub.db.engine import Database
    from gridwarden.hub.ingest import HubIngestor
    from gridwarden.hub.settings import HubSettings
    from gridwarden.hub.webhooks import Backoff, WebhookForwarder
    from gridwarden.observability import (
        HubMetrics,
        SystemdNotifier,
        Watchdog,
        WatchdogPinger,
        add_metrics_route,
        case_counts_by_state,
        configure_logging,
        http_probe,
        notify_ready_when,
        sla_overdue_counts,
    )

    configure_logging(args.log_level.upper())
    overrides = {
        "database_url": args.db,
        "mqtt_host": args.mqtt_host,
        "mqtt_port": args.mqtt_port,
        "mqtt_username": args.mqtt_username,
        "mqtt_client_id": args.client_id,
        "evidence_root": args.evidence_root,
    }
    settings = HubSettings.from_env()
    settings = HubSettings.model_validate(
        {**settings.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
    )
    mqtt_password = (
        Path(args.mqtt_password_file).read_text().strip()
        if args.mqtt_password_file
        else settings.mqtt_password
    )
    try:
        secret = _read_secret(args.webhook_secret_file, WEBHOOK_SECRET_ENV)
    except (OSError, ValueError) as exc:
        print(f"error: webhook secret: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.webhook_url and secret is None:
        print(f"error: --webhook-url needs --webhook-secret-file or ${WEBHOOK_SECRET_ENV}", file=sys.stderr)
        return EXIT_USAGE
    if args.webhook_url and not args.webhook_url.startswith(("http://", "https://")):
        print(f"error: --webhook-url must be http(s)://..., got {args.webhook_url!r}", file=sys.stderr)
        return EXIT_USAGE

    try:
        store = build_evidence_store(settings)
    except OSError as exc:
        print(f"error: evidence root {settings.resolved_evidence_root()}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    db = Database.open(settings.database_url)
    metrics = HubMetrics()
    metrics.instrument_engine(db.engine)
    forwarder = None
    if args.webhook_url:
        assert secret is not None
        forwarder = WebhookForwarder(
            db,
            args.webhook_url,
            secret,
            case_service=CaseService(db, sla_target_s=settings.sla_target_s),
            backoff=Backoff(base_s=args.webhook_backoff_s, max_s=args.webhook_backoff_max_s),
        )
    from gridwarden.hub.config_push import ConfigPublisher

    config_publisher = ConfigPublisher(
        host=settings.mqtt_host,
        port=settings.mqtt_port,
        username=settings.mqtt_username,
        password=mqtt_password,
        client_id=f"{settings.mqtt_client_id or 'hub'}-config",
    )
    config_publisher.connect(timeout_s=0)  # keeps retrying in the background
    app = create_app(
        settings,
        db=db,
        webhook_states=WEBHOOK_STATES if forwarder else (),
        webhook_waker=forwarder,
        config_publisher=config_publisher,
    )
    app.include_router(build_evidence_router(store, upload_permission=Permission.UPLOAD_EVIDENCE))
    from gridwarden.hub.api.console import install_console

    install_console(app, evidence=store)
    from gridwarden.hub.api.snapshots import build_snapshots_router

    app.include_router(build_snapshots_router(store.root / "camera-snapshots"))
    from gridwarden.hub.api.dry_run import build_dry_run_router
    from gridwarden.hub.dry_run import DryRunService

    dry_runs = DryRunService(
        store.root.parent / "dry-runs", model_dir=Path(settings.model_dir) if settings.model_dir else None
    )
    app.include_router(build_dry_run_router(dry_runs, store))
    pruner = EvidencePruner(store)
    failed = threading.Event()
    server_box: list[uvicorn.Server] = []

    def stop_failed() -> None:
        # The ingest writer died: stop serving and exit non-zero, so systemd restarts the hub
        # (/healthz answers 503 until then).
        failed.set()
        for running in server_box:
            running.should_exit = True

    ingestor = HubIngestor(
        db=db,
        mqtt_host=settings.mqtt_host,
        mqtt_port=settings.mqtt_port,
        group=settings.mqtt_group,
        client_id=settings.mqtt_client_id,
        username=settings.mqtt_username,
        password=mqtt_password,
        batch_max=settings.batch_max,
        batch_wait_s=settings.batch_wait_s,
        merge_window_s=settings.merge_window_s,
        merge_iou=settings.merge_iou,
        on_fatal=lambda _exc: stop_failed(),
    )
    app.state.health_checks = [ingestor.health_problem]
    metrics.watch_ingest(ingestor.stats)
    metrics.watch_cases(case_counts_by_state(db), states=STATES)
    metrics.watch_sla(sla_overdue_counts(db, target_s=settings.sla_target_s))
    add_metrics_route(app, metrics.registry)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_level=args.log_level.lower(),
            access_log=False,
            # An open console holds a server-sent-events stream; don't let it delay a SIGTERM.
            timeout_graceful_shutdown=5,
            log_config=None,  # our JSON/text logging handles uvicorn's lines too
        )
    )
    server_box.append(server)
    notifier = SystemdNotifier()
    probe_host = "127.0.0.1" if args.host in ("0.0.0.0", "") else args.host
    pinger = WatchdogPinger(Watchdog(notifier), http_probe(f"http://{probe_host}:{args.port}/healthz"))

    def request_stop(signum: int, _frame: object) -> None:
        # Installed before uvicorn starts (a signal during start-up must not kill us half-way) and
        # restored by uvicorn when it returns, which then re-raises the signal it caught: this
        # handler turns that into a no-op instead of the default "terminate now".
        server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, request_stop)

    ingestor.start()
    if forwarder is not None:
        forwarder.start()
    pruner.start()
    log.info(
        "hub serving on http://%s:%d, ingesting from mqtt://%s:%d%s; evidence in %s",
        args.host, args.port, settings.mqtt_host, settings.mqtt_port,
        f", webhooks to {args.webhook_url}" if forwarder else "", store.root,
    )  # fmt: skip
    notify_ready_when(
        lambda: server.started,
        notifier,
        status=f"serving on {args.host}:{args.port}",
        give_up=lambda: server.should_exit,
        then=pinger.start,
    )
    try:
        server.run()
    finally:
        notifier.stopping()
        pinger.stop()
        log.info("hub stopping: ingestor, then webhooks")
        ingestor.stop()
        if forwarder is not None:
            forwarder.stop()
        pruner.stop()
        config_publisher.close()
        dry_runs.close()
        db.dispose()
        log.info("hub stopped")
    if failed.is_set():
        log.critical("hub exits with status %d: its ingest writer died", EXIT_RUNTIME)
        return EXIT_RUNTIME
    return 0


def register_hub_cli(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``hub`` command (with ``serve``) to the ``gridwarden`` parser's sub-commands."""
    hub = subparsers.add_parser("hub", help="run the hub", description="Hub commands.")
    hub_sub = hub.add_subparsers(dest="hub_command", metavar="SUBCOMMAND", required=True)
    sv = hub_sub.add_parser(
        "serve",
        help="serve the REST API, ingest MQTT and forward webhooks, until SIGTERM",
        description=(
            "Serve the REST API, consume the edges' MQTT messages into the database and (with "
            "--webhook-url) forward confirmed cases, all in this process. SIGTERM/SIGINT stop the API "
            "first, then the ingest (what arrived is stored and acknowledged), then the webhooks "
            "(undelivered ones stay queued in the database); exit status 0."
        ),
    )
    sv.add_argument(
        "--db", help="database URL (default: $GRIDWARDEN_HUB_DATABASE_URL or sqlite:///var/hub.db)"
    )
    sv.add_argument("--mqtt-host", help="broker host (default: $GRIDWARDEN_HUB_MQTT_HOST or 127.0.0.1)")
    sv.add_argument("--mqtt-port", type=int, help="broker port (default: $GRIDWARDEN_HUB_MQTT_PORT or 1883)")
    sv.add_argument("--mqtt-username", help="broker user name of the hub")
    sv.add_argument("--mqtt-password-file", help="file holding the hub's broker password")
    sv.add_argument("--client-id", help="stable MQTT client id of this hub process (default: hub-<group>)")
    sv.add_argument(
        "--evidence-root",
        help="folder for uploaded clips and snapshots (default: $GRIDWARDEN_HUB_EVIDENCE_ROOT, "
        "else 'evidence' beside a SQLite database, else var/hub/evidence)",
    )
    sv.add_argument("--host", default="127.0.0.1", help="address the API listens on (default: 127.0.0.1)")
    sv.add_argument("--port", type=int, default=8080, help="port the API listens on (default: 8080)")
    sv.add_argument("--webhook-url", help="POST confirmed cases here (signed with the shared secret)")
    sv.add_argument(
        "--webhook-secret-file", help=f"file holding the webhook secret (or ${WEBHOOK_SECRET_ENV})"
    )
    sv.add_argument(
        "--webhook-backoff-s", type=float, default=2.0, help="first retry delay (doubles, default 2)"
    )
    sv.add_argument(
        "--webhook-backoff-max-s", type=float, default=600.0, help="longest retry delay (default 600)"
    )
    sv.add_argument("--log-level", default="INFO")
    sv.set_defaults(func=serve)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gridwarden.hub.serve_cli ...`` — the same as ``gridwarden hub serve ...``."""
    parser = argparse.ArgumentParser(prog="gridwarden")
    register_hub_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["hub", "serve", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
