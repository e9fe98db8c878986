"""The ``gridwarden`` command: one entry point for every role of the appliance.

Each sub-command imports what it needs only when it runs, so ``gridwarden --help`` is instant
and an edge box never imports the hub's web stack.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from gridwarden import __version__

EXIT_CONFIG = 2
EXIT_RUNTIME = 1


def _cmd_config_check(args: argparse.Namespace) -> int:
    from gridwarden.config_check import check_edge_config_file

    worst = 0
    for path in args.files:
        cfg, problems = check_edge_config_file(path)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems or cfg is None:
            worst = EXIT_CONFIG
            n = len(problems)
            print(f"{path}: {n} problem{'s' if n != 1 else ''}", file=sys.stderr)
        else:
            zones = sum(len(c.zones) for c in cfg.cameras)
            print(
                f"{path}: OK (edge {cfg.edge_id}, {_plural(len(cfg.cameras), 'camera')}, {_plural(zones, 'zone')})"
            )
    return worst


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _cmd_edge_replay(args: argparse.Namespace) -> int:
    from gridwarden.edge.config import load_edge_config
    from gridwarden.edge.replay import ReplayStats, replay

    cfg = load_edge_config(args.config)
    if not Path(args.clip).exists():
        print(f"error: clip {args.clip} does not exist", file=sys.stderr)
        return EXIT_RUNTIME
    writer = None
    on_frame = None
    if args.annotate:
        from gridwarden.edge.analytics.camera_analytics import CameraAnalytics, FrameResult
        from gridwarden.edge.annotate import draw_result
        from gridwarden.edge.annotate_source_rate import SourceRateAnnotator

        # Every source frame is written (the clip's own rate), with the latest analysis drawn on it.
        writer = SourceRateAnnotator(args.clip, args.annotate)

        def on_frame(analytics: CameraAnalytics, result: FrameResult) -> None:
            assert writer is not None
            writer.add(draw_result(analytics, result), result.frame.image, result.frame.media_time)

    stats = ReplayStats()
    try:
        for event in replay(
            args.clip,
            cfg,
            camera_id=args.camera,
            realtime=args.realtime,
            on_frame=on_frame,
            progress=not args.no_progress,
            stats=stats,
        ):
            print(event.model_dump_json(), flush=True)
    finally:
        if writer is not None:
            writer.close()
    print(
        json.dumps(
            {
                "summary": True,
                "frames": stats.frames,
                "detector_calls": stats.detector_calls,
                "gated_frames": stats.gated_frames,
                "events": stats.events,
                "media_s": round(stats.media_s, 2),
                "wall_s": round(stats.wall_s, 2),
            }
        ),
        file=sys.stderr,
    )
    return 0


def _cmd_schema_export(args: argparse.Namespace) -> int:
    from gridwarden.contract import export_json_schemas

    for p in export_json_schemas(Path(args.out)):
        print(p)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridwarden",
        description="Gridwarden: edge video analytics for city streets (illegal parking, occupied public space).",
    )
    parser.add_argument("--version", action="version", version=f"gridwarden {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    edge = sub.add_parser("edge", help="run or replay the edge pipeline", description="Edge node commands.")
    edge_sub = edge.add_subparsers(dest="edge_command", metavar="SUBCOMMAND", required=True)
    rp = edge_sub.add_parser(
        "replay",
        help="run a recorded clip through the whole pipeline and print incident events",
        description=(
            "Run CLIP through the pipeline of one camera of the configuration, as fast as the machine "
            "allows (or at real-time rate with --realtime). Each incident event is printed on stdout as "
            "one JSON object per line; a progress bar and a summary go to stderr."
        ),
    )
    rp.add_argument("clip", help="video file to replay (any format FFmpeg reads)")
    rp.add_argument("--config", required=True, help="edge configuration YAML")
    rp.add_argument("--camera", help="camera id whose zones and rules apply (default: the first camera)")
    rp.add_argument(
        "--annotate",
        metavar="OUT.mp4",
        help="write the video with zones, the crops the detector looked at, boxes, track ids and dwell timers",
    )
    rp.add_argument("--realtime", action="store_true", help="pace reading to the clip's own clock")
    rp.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    rp.set_defaults(func=_cmd_edge_replay)

    run = edge_sub.add_parser(
        "run",
        help="run the edge service: read cameras, detect, apply rules, publish incidents",
        description=(
            "Run every enabled camera of the configuration until SIGTERM/SIGINT. Incidents go through the "
            "durable outbox to MQTT when the configuration has an mqtt section, else to stdout as JSON lines."
        ),
    )
    run.add_argument("--config", required=True, help="edge configuration YAML")
    run.set_defaults(
        func=lambda a: __import__("gridwarden.edge.service", fromlist=["x"]).main_from_cli(a.config)
    )

    config = sub.add_parser("config", help="check configuration files", description="Configuration commands.")
    config_sub = config.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    chk = config_sub.add_parser(
        "check",
        help="validate edge configuration files and report every problem with file, line and field",
        description="Validate configuration files. Exit status 0 when all are valid, 2 otherwise.",
    )
    chk.add_argument("files", nargs="+", help="configuration YAML files")
    chk.set_defaults(func=_cmd_config_check)

    schema = sub.add_parser("schema", help="wire contract tools", description="Wire contract tools.")
    schema_sub = schema.add_subparsers(dest="schema_command", metavar="SUBCOMMAND", required=True)
    exp = schema_sub.add_parser("export", help="write the JSON Schemas of the MQTT messages")
    exp.add_argument("out", nargs="?", default="schemas", help="output folder (default: schemas)")
    exp.set_defaults(func=_cmd_schema_export)

    for extra in _extra_commands():
        extra(sub)
    return parser


def _extra_commands() -> list[Callable[[argparse._SubParsersAction], None]]:
    """Sub-commands that live beside their code (hub, users, models); registering them imports
    no database or web code, so ``gridwarden --help`` stays fast."""
    from gridwarden.demo import register_cli as register_demo_cli
    from gridwarden.evaluation.cli import register_cli as register_eval_cli
    from gridwarden.hub.broker_security import register_cli as register_broker_cli
    from gridwarden.hub.dataset_export import register_cli as register_export_dataset_cli
    from gridwarden.hub.places.cli import register_cli as register_areas_cli
    from gridwarden.hub.reports.qr_cli import register_cli as register_qr_cli
    from gridwarden.hub.serve_cli import register_hub_cli
    from gridwarden.hub.users_cli import register_cli as register_users_cli
    from gridwarden.models.cli import register_cli as register_models_cli

    return [
        register_hub_cli,
        register_export_dataset_cli,
        register_users_cli,
        register_models_cli,
        register_demo_cli,
        register_broker_cli,
        register_eval_cli,
        register_areas_cli,
        register_qr_cli,
    ]


def main(argv: Sequence[str] | None = None) -> int:
    from gridwarden.yamlconfig import ConfigError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
