"""``gridwarden demo``: the whole appliance on one machine, with embedded defaults.

It starts, as child processes so each stops cleanly on its own:

* a broker: a private Mosquitto on a free loopback port (unless ``--mqtt-host/--mqtt-port`` name
  one). Why Mosquitto rather than an in-process Python broker: the hub relies on MQTT 5 shared
  subscriptions and persistent sessions, which the pure-Python brokers on PyPI (amqtt) do not
  implement; ``scripts/run.sh`` installs Debian's mosquitto when it is missing;
* the hub (``gridwarden hub serve``) on SQLite under the data folder, with a staff user whose
  token is printed;
* one edge (``gridwarden edge run``). With no ``--config``, it watches a street scene this
  project renders itself (:mod:`gridwarden.edge.capture.synthetic_scene`: a market stall is set up on
  the pavement and stays) through the class-agnostic static-object rule, so an incident and a
  case appear with no camera, no model and no download. With ``--config FILE`` it runs that
  edge configuration (its ``mqtt`` section is pointed at the demo's broker).

Evidence runs end to end: the demo creates an ``edge`` user on the hub (a role that may only
upload evidence), writes its token to ``<data-dir>/edge-token`` (mode 0600) and points the edge's
``hub`` section at the demo hub, so each incident's two snapshots and its clip are uploaded and
served by the hub at ``/api/v1/evidence/<sha256>`` (the case's incidents list their hashes).

SIGTERM or Ctrl-C stops the edge, then the hub, then the broker.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

DEMO_CAMERA = "street-01"
DEMO_ZONE = "pavement"
EDGE_USER = "edge-demo"  # an edge user is named like its edge_id (its token acts for that edge only)


def _write_secret(path: Path, value: str) -> None:
    """Write a token readable by this user only (created 0600, never world-readable)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")


def render_demo_scene(
    path: Path, *, duration_s: float = 90.0, arrive_s: float = 8.0, leave_s: float = 70.0
) -> Path:
    """Write the synthetic street scene as an H.264 MP4 (once; reused on later runs)."""
    if path.exists():
        return path
    from gridwarden.edge.annotate import AnnotatedVideoWriter
    from gridwarden.edge.capture.synthetic_scene import make_street_scene

    fps = 5.0
    tmp = path.with_suffix(".part.mp4")
    writer = AnnotatedVideoWriter(tmp, fps, (640, 360))
    try:
        for _t, image in make_street_scene(
            640, 360, fps=fps, duration_s=duration_s, arrive_s=arrive_s, leave_s=leave_s
        ):
            writer.write(image)
    finally:
        writer.close()
    tmp.rename(path)
    return path


def demo_edge_config(scene: Path, data_dir: Path, mqtt_host: str, mqtt_port: int) -> dict[str, Any]:
    """Edge configuration for the synthetic scene: one camera, a static-object rule on the pavement."""
    from gridwarden.edge.capture.synthetic_scene import STALL_BOX_NORMALISED

    x1, y1, x2, y2 = STALL_BOX_NORMALISED
    pad = 0.08
    polygon = [
        [max(0.0, x1 - pad), max(0.0, y1 - 0.05)],
        [min(1.0, x2 + pad), max(0.0, y1 - 0.05)],
        [min(1.0, x2 + pad), min(1.0, y2 + 0.05)],
        [max(0.0, x1 - pad), min(1.0, y2 + 0.05)],
    ]
    return {
        "edge_id": "edge-demo",
        "site": "demo",
        "data_dir": str(data_dir / "edge"),
        "mqtt": {"host": mqtt_host, "port": mqtt_port},
        "cameras": [
            {
                "id": DEMO_CAMERA,
                "kind": "skynet",
                "url": str(scene),
                "analysis_fps": 2,
                "zones": [
                    {
                        "id": DEMO_ZONE,
                        "polygon": polygon,
                        "rules": [
                            {
                                "type": "static_object",
                                "coverage": 0.2,
                                "dwell_s": 5,
                                "min_static_s": 8,
                                "end_grace_s": 2,
                            }
                        ],
                    }
                ],
            }
        ],
    }


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} during start-up")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f}s")


def _start_mosquitto(data_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if binary is None:
        raise RuntimeError(
            "no MQTT broker: install Mosquitto (Debian: apt-get install mosquitto; scripts/run.sh does it) "
            "or point the demo at a broker with --mqtt-host/--mqtt-port"
        )
    port = _free_port()
    broker_dir = data_dir / "mosquitto"
    broker_dir.mkdir(parents=True, exist_ok=True)
    broker_dir.chmod(0o777)  # mosquitto drops to its own user when started as root
    conf = broker_dir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {broker_dir}/\nlog_dest file {broker_dir}/mosquitto.log\n"
    )
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_port(port, proc, "mosquitto")
    return proc, port


def _stop(proc: subprocess.Popen[bytes] | None, name: str, timeout: float = 20.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"[demo] {name} did not stop within {timeout:.0f}s; killing it", file=sys.stderr)
        proc.kill()
        proc.wait()


def run_demo(args: argparse.Namespace) -> int:
    from gridwarden.hub.auth import UserStore
    from gridwarden.hub.db import Database, upgrade_database
    from gridwarden.hub.reports.points import DEMO_OUTLINE, seed_demo_points

    data_dir = Path(args.data_dir).resolve()

    data_dir.mkdir(parents=True, exist_ok=True)
    logs = data_dir / "logs"
    logs.mkdir(exist_ok=True)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    broker = hub = edge = None
    try:
        if args.mqtt_port:
            mqtt_host, mqtt_port = args.mqtt_host, args.mqtt_port
            print(f"[demo] using the MQTT broker at {mqtt_host}:{mqtt_port}")
        else:
            broker, mqtt_port = _start_mosquitto(data_dir)
            mqtt_host = "127.0.0.1"
            print(f"[demo] started Mosquitto on 127.0.0.1:{mqtt_port}")

        db_url = f"sqlite:///{data_dir / 'hub.db'}"
        upgrade_database(db_url)
        db = Database.open(db_url)
        try:
            users = UserStore(db)
            existing = {u.username for u in users.list()}
            # Fresh tokens each run; the old ones stop working.
            _, token = users.rotate("demo") if "demo" in existing else users.create("demo", "admin")
            _, edge_token = (
                users.rotate(EDGE_USER) if EDGE_USER in existing else users.create(EDGE_USER, "edge")
            )
            password = secrets.token_urlsafe(9)  # a fresh console password each run
            users.set_password("demo", password)
            seed_demo_points(db)  # QR points residents report from (/r/DEMO-001), drawn on the map
        finally:
            db.dispose()
        edge_token_file = data_dir / "edge-token"
        _write_secret(edge_token_file, edge_token)

        api_port = args.port or _free_port()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        cli = [sys.executable, "-m", "gridwarden.cli"]
        hub_cmd = [*cli, "hub", "serve", "--db", db_url, "--mqtt-host", mqtt_host, "--mqtt-port", str(mqtt_port),
                   "--host", args.host, "--port", str(api_port), "--client-id", "hub-demo",
                   "--map-outline", str(DEMO_OUTLINE)]  # fmt: skip
        with open(logs / "hub.log", "ab") as hub_log:  # the child keeps its own copy of the fd
            hub = subprocess.Popen(hub_cmd, stdout=hub_log, stderr=subprocess.STDOUT, env=env)
        _wait_port(api_port, hub, "the hub")

        if args.config:
            cfg = yaml.safe_load(Path(args.config).read_text())
            cfg["mqtt"] = {**(cfg.get("mqtt") or {}), "host": mqtt_host, "port": mqtt_port}
            base = Path(args.config).resolve().parent
            if cfg.get("model") and not Path(cfg["model"]["path"]).is_absolute():
                cfg["model"]["path"] = str(base / cfg["model"]["path"])
            for cam in cfg.get("cameras", []):
                if "://" not in cam["url"] and not Path(cam["url"]).is_absolute():
                    cam["url"] = str(base / cam["url"])
            print(f"[demo] edge: {args.config}")
        else:
            print(
                "[demo] no camera configured: rendering a street scene in which a stall is set up and stays"
            )
            scene = render_demo_scene(data_dir / "street-scene.mp4")
            cfg = demo_edge_config(scene, data_dir, mqtt_host, mqtt_port)
        shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "") else args.host
        cfg["hub"] = {"url": f"http://{shown_host}:{api_port}", "token_file": str(edge_token_file)}
        cfg.setdefault("evidence", {"enabled": True})
        cfg.setdefault("data_dir", str(data_dir / "edge"))
        edge_config = data_dir / "edge.yaml"
        edge_config.write_text(yaml.safe_dump(cfg, sort_keys=False))
        with open(logs / "edge.log", "ab") as edge_log:
            edge = subprocess.Popen(
                [*cli, "edge", "run", "--config", str(edge_config)],
                stdout=edge_log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        print(
            "\n"
            f"  Gridwarden is running.\n"
            f"  Review console: http://{shown_host}:{api_port}/console/\n"
            f"  Console login:  user 'demo', password {password}\n"
            f"  API and docs:   http://{shown_host}:{api_port}/docs\n"
            f"  Cases:          http://{shown_host}:{api_port}/api/v1/cases\n"
            f"  API token:      {token}\n"
            f"  Try:            curl -H 'Authorization: Bearer {token}' http://{shown_host}:{api_port}/api/v1/cases\n"
            f"  Evidence:       http://{shown_host}:{api_port}/api/v1/evidence/<sha256> (hashes in each case)\n"
            f"  One map:        http://{shown_host}:{api_port}/city/map.html  (statistics: /city/stats.html)\n"
            f"  Resident page:  http://{shown_host}:{api_port}/r/DEMO-001  (what a posted QR code opens)\n"
            f"  Logs:           {logs}/\n"
            "  A case appears within about a minute. Ctrl-C stops everything.\n",
            flush=True,
        )
        if args.token_file:
            Path(args.token_file).write_text(token + "\n")
        while not stop.wait(1.0):
            for proc, name in ((hub, "hub"), (edge, "edge"), (broker, "mosquitto")):
                if proc is not None and proc.poll() is not None:
                    print(
                        f"[demo] the {name} exited with status {proc.returncode}; see {logs}", file=sys.stderr
                    )
                    stop.set()
                    return 1
        return 0
    finally:
        print("[demo] stopping edge, hub and broker", file=sys.stderr)
        _stop(edge, "edge")
        _stop(hub, "hub")
        _stop(broker, "mosquitto")


# What `gridwarden demo --help` says: for the person running it (the module docstring above is
# for the person reading the code).
DEMO_HELP = """\
Run the whole appliance on this machine: a private Mosquitto broker, the hub (SQLite under
--data-dir) and one edge. Nothing to download and no camera or model needed.

Without --config the edge watches a street scene rendered on this machine in which a market
stall is set up on the pavement and stays: within about a minute a case appears in the review
console, with two snapshots and a clip. With --config FILE the edge runs your own configuration
(its mqtt section is pointed at the demo's broker).

The demo prints the console's address with a user name and password, and an API token.
Ctrl-C stops the edge, the hub and the broker.

examples:
  gridwarden demo
  gridwarden demo --config configs/edge.example.yaml --port 8081
  gridwarden users list       # finds the demo's database by itself
"""


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run broker, hub and one edge on this machine (no camera or model needed)",
        description=DEMO_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "gridwarden-demo"),
                   help="where the hub database, logs and the rendered scene go (default: %(default)s)")  # fmt: skip
    p.add_argument("--config", help="an edge configuration to run instead of the synthetic scene")
    p.add_argument(
        "--host", default="127.0.0.1", help="address the hub API listens on (default: %(default)s)"
    )
    p.add_argument(
        "--port", type=int, default=8080, help="hub API port (0 = any free port; default: %(default)s)"
    )
    p.add_argument("--mqtt-host", default="127.0.0.1", help="an existing broker's host (with --mqtt-port)")
    p.add_argument(
        "--mqtt-port", type=int, default=0, help="an existing broker's port (default: start Mosquitto)"
    )
    p.add_argument("--token-file", help="also write the demo user's token to this file")
    p.set_defaults(func=run_demo)
