"""``gridwarden hub serve``: the whole hub in one process — REST API, MQTT ingest, webhooks.

The process is what :func:`gridwarden.hub.app.build_hub` builds: uvicorn serves its app on the
main thread while its ingestor, webhook forwarder (only with ``--webhook-url``) and evidence
pruner run on their threads. SIGTERM or SIGINT stops uvicorn first (no new requests), then
:meth:`~gridwarden.hub.app.Hub.stop` (ingest: what arrived is stored and acknowledged, the rest
stays on the broker; webhooks: undelivered ones stay in the outbox), and the process exits 0.

Every option is a :class:`~gridwarden.hub.settings.HubSettings` field: ``--mqtt-port 1884`` or
``GRIDWARDEN_HUB_MQTT_PORT=1884``, the flag winning. The flags are generated from the fields, so
a new setting is on the command line and in ``--help`` without touching this file. Settings are
validated before anything starts; a bad one ends the process with status 2 and one line per
problem naming the flag and the variable. Secrets (broker password, webhook secret) are read
from a file or the environment, never from a flag, which any local user could read in the
process list.

Once the API listens and the ingest has subscribed, one line ``ready <client-id>`` goes to
stdout (tests and benchmarks wait for it); systemd hears READY=1 as soon as the API listens.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from gridwarden.hub.settings import ENV_PREFIX, HubSettings

EXIT_USAGE = 2
EXIT_RUNTIME = 1  # a worker thread died: systemd restarts the hub

log = logging.getLogger("gridwarden.hub.serve")

# Flags kept from before the settings were generated (the systemd unit and scripts use them).
ALIASES: dict[str, tuple[str, ...]] = {
    "database_url": ("--db",),
    "mqtt_client_id": ("--client-id",),
    "mqtt_group": ("--group",),
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _field_type(annotation: Any) -> Any:
    """``int | None`` -> ``int``; the type argparse converts the flag's text with."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return annotation


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`HubSettings` field (secrets excepted); defaults come from the settings."""
    for name, info in HubSettings.model_fields.items():
        kind = _field_type(info.annotation)
        if kind is SecretStr:
            continue
        env = ENV_PREFIX + name.upper()
        default = info.default if info.default is not None else "none"
        what = info.description or name.replace("_", " ")
        flags = (_flag(name), *ALIASES.get(name, ()))
        if kind is bool:
            parser.add_argument(
                *flags,
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=f"{what} (${env}, default {str(default).lower()})",
            )
            continue
        parser.add_argument(
            *flags,
            dest=name,
            type=str if kind not in (int, float) else kind,
            default=argparse.SUPPRESS,
            metavar=name.upper(),
            help=f"{what} (${env}, default {default})",
        )


def settings_from_args(args: argparse.Namespace) -> HubSettings:
    """The environment with the flags that were given on top; raises ``ValidationError``."""
    given = {name: getattr(args, name) for name in HubSettings.model_fields if hasattr(args, name)}
    return HubSettings(**given)


def explain(exc: ValidationError) -> list[str]:
    """One line per problem, naming the flag and the environment variable."""
    lines = []
    for problem in exc.errors(include_url=False):
        name = str(problem["loc"][0]) if problem["loc"] else ""
        where = f"{_flag(name)} / ${ENV_PREFIX}{name.upper()}: " if name in HubSettings.model_fields else ""
        lines.append(f"error: {where}{problem['msg']}")
    return lines


def _write_stats(path: Path, stats: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(stats))
    tmp.replace(path)


def serve(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
    except ValidationError as exc:
        for line in explain(exc):
            print(line, file=sys.stderr)
        return EXIT_USAGE

    import uvicorn

    from gridwarden.hub.app import build_hub
    from gridwarden.observability import (
        SystemdNotifier,
        Watchdog,
        WatchdogPinger,
        configure_logging,
        http_probe,
        notify_ready_when,
    )

    configure_logging(settings.log_level.upper())
    try:
        hub = build_hub(settings)
    except OSError as exc:
        print(f"error: evidence root {settings.resolved_evidence_root()}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:  # a bad category table or basemap (gridwarden.hub.reports.wiring)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    server = uvicorn.Server(
        uvicorn.Config(
            hub.app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level.lower(),
            access_log=False,
            # An open console holds a server-sent-events stream; don't let it delay a SIGTERM.
            timeout_graceful_shutdown=5,
            log_config=None,  # our JSON/text logging handles uvicorn's lines too
        )
    )
    notifier = SystemdNotifier()
    probe_host = "127.0.0.1" if settings.host in ("0.0.0.0", "") else settings.host
    pinger = WatchdogPinger(Watchdog(notifier), http_probe(f"http://{probe_host}:{settings.port}/healthz"))
    stopped = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        # Installed before uvicorn starts (a signal during start-up must not kill us half-way) and
        # restored by uvicorn when it returns, which then re-raises the signal it caught: this
        # handler turns that into a no-op instead of the default "terminate now".
        server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, request_stop)

    failed = threading.Event()

    def stop_failed(_exc: BaseException) -> None:
        # The ingest writer died: stop serving and exit non-zero so systemd restarts the hub
        # (/healthz answers 503 until then).
        failed.set()
        server.should_exit = True

    hub.ingestor.on_fatal = stop_failed

    def announce_and_record() -> None:
        announced = False
        while not stopped.wait(0.2 if not announced else 1.0):
            if not announced and server.started and hub.ingestor.wait_ready(0):
                print(f"ready {hub.ingestor.client_id}", flush=True)
                announced = True
            if settings.stats_file is not None:
                _write_stats(settings.stats_file, hub.ingestor.stats())

    hub.start()
    reporter = threading.Thread(target=announce_and_record, name="hub-ready", daemon=True)
    reporter.start()
    log.info(
        "hub serving on http://%s:%d, ingesting from mqtt://%s:%d%s; evidence in %s",
        settings.host, settings.port, settings.mqtt_host, settings.mqtt_port,
        f", webhooks to {settings.webhook_url}" if hub.forwarder else "", hub.evidence.root,
    )  # fmt: skip
    notify_ready_when(
        lambda: server.started,
        notifier,
        status=f"serving on {settings.host}:{settings.port}",
        give_up=lambda: server.should_exit,
        then=pinger.start,
    )
    try:
        server.run()
    finally:
        notifier.stopping()
        pinger.stop()
        stopped.set()
        reporter.join(5)
        log.info("hub stopping: ingestor, then webhooks")
        hub.stop()
        if settings.stats_file is not None:
            _write_stats(settings.stats_file, hub.ingestor.stats())
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
            "(undelivered ones stay queued in the database); exit status 0. Every option can also be "
            f"set in the environment as ${ENV_PREFIX}<OPTION> (the flag wins); the broker password "
            f"and the webhook secret only there (${ENV_PREFIX}MQTT_PASSWORD, "
            f"${ENV_PREFIX}WEBHOOK_SECRET) or in a file (--mqtt-password-file, --webhook-secret-file)."
        ),
    )
    add_settings_arguments(sv)
    sv.set_defaults(func=serve)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gridwarden.hub.serve_cli ...`` — the same as ``gridwarden hub serve ...``."""
    parser = argparse.ArgumentParser(prog="gridwarden")
    register_hub_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["hub", "serve", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
