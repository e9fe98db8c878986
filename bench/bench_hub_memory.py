"""Benchmark: hub memory under worst-case messages (issue 12 item 2).

Starts a private Mosquitto and the real ``gridwarden hub serve`` (SQLite), then publishes in the
same run:

1. a baseline of N ordinary events (one edge, consecutive seqs, one object each);
2. N worst-case messages: every event jumps ``seq`` by 10 million (a gap of 10 million each),
   carries the most objects the contract allows (zero-area boxes), and every 10th message is
   poison the contract refuses (1000 zero-area boxes, media_time 1e20, seq 2**63) and becomes a
   dead letter.

It prints the hub's RSS (``/proc/<pid>/status``) before, after the baseline and after the
worst case, the growth of each, their ratio, and how long ``/healthz`` took at the end. Before
the fix one 10-million jump cost ~755 MB and one message of thousands of boxes ~470 MB.

    .venv/bin/python bench/bench_hub_memory.py            # N = 1000
    .venv/bin/python bench/bench_hub_memory.py --events 200
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from gridwarden.contract import MAX_OBJECTS_PER_EVENT, Topics  # noqa: E402
from gridwarden.hub.db import Database  # noqa: E402
from gridwarden.hub.db.models import DeadLetter, ReceivedEvent  # noqa: E402
from tests.hub.factories import incident_event  # noqa: E402
from tests.support.mosquitto import MosquittoBroker  # noqa: E402
from tests.support.ports import free_port, wait_for_port  # noqa: E402

SITE, EDGE = "north", "edge-01"
JUMP = 10_000_000


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def zero_box(i: int) -> dict[str, object]:
    return {
        "track_id": i,
        "class_name": "car",
        "confidence": 0.5,
        "box": {"x1": 0.3, "y1": 0.3, "x2": 0.3, "y2": 0.3},
    }


def event_payload(seq: int, incident: str, objects: int, **changes: object) -> bytes:
    data = json.loads(incident_event(seq=1, incident_id=incident, edge_id=EDGE, site=SITE).model_dump_json())
    data.update(seq=seq, objects=[zero_box(i) for i in range(objects)], **changes)
    return json.dumps(data).encode()


def publish(port: int, payloads: list[bytes]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-edge", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(Topics(SITE, EDGE).incidents, p, qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(30)
    client.disconnect()
    client.loop_stop()


def wait_count(db: Database, target: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with db.session() as s:
            done = (s.scalar(select(func.count()).select_from(ReceivedEvent)) or 0) + (
                s.scalar(select(func.count()).select_from(DeadLetter)) or 0
            )
        if done >= target:
            return time.monotonic() - started
        time.sleep(0.2)
    raise TimeoutError(f"only {done} of {target} messages handled")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    args = parser.parse_args()
    n = args.events
    with tempfile.TemporaryDirectory(prefix="gw-bench-mem-") as tmp:
        work = Path(tmp)
        broker = MosquittoBroker(work / "broker")
        (work / "broker").mkdir()
        broker.start()
        port = free_port()
        db_url = f"sqlite:///{work / 'hub.db'}"
        hub = subprocess.Popen(
            [sys.executable, "-m", "gridwarden.cli", "hub", "serve", "--db", db_url, "--mqtt-port", str(broker.port),
             "--port", str(port), "--evidence-root", str(work / "evidence"), "--log-level", "WARNING"],
            cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for_port(port, timeout=60)
            time.sleep(2.0)  # subscribed
            db = Database(db_url)
            start = rss_mb(hub.pid)
            publish(broker.port, [event_payload(i + 1, f"b{i}", 1) for i in range(n)])
            base_s = wait_count(db, n, 300)
            after_base = rss_mb(hub.pid)
            worst: list[bytes] = []
            seq = n
            for i in range(n):
                if i % 10 == 9:
                    poison = (
                        event_payload(seq + 1, f"p{i}", 1000),
                        event_payload(seq + 1, f"p{i}", 1, media_time=1e20),
                        event_payload(2**63, f"p{i}", 1),
                    )[i // 10 % 3]
                    worst.append(poison)
                else:
                    seq += JUMP
                    worst.append(event_payload(seq, f"w{i}", MAX_OBJECTS_PER_EVENT))
            publish(broker.port, worst)
            worst_s = wait_count(db, 2 * n, 600)
            after_worst = rss_mb(hub.pid)
            t0 = time.monotonic()
            status = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code
            health_ms = (time.monotonic() - t0) * 1000
            db.dispose()
        finally:
            hub.terminate()
            hub.wait(30)
            broker.stop()
    base_growth, worst_growth = after_base - start, after_worst - after_base
    print(f"hub RSS at start                      {start:8.1f} MB")
    print(
        f"after {n} ordinary events            {after_base:8.1f} MB  (+{base_growth:.1f} MB, {base_s:.1f} s)"
    )
    print(
        f"after {n} worst-case messages        {after_worst:8.1f} MB  (+{worst_growth:.1f} MB, {worst_s:.1f} s)"
    )
    print(f"worst-case growth / baseline growth   {worst_growth / max(base_growth, 0.1):8.2f}")
    print(f"gap per worst event                   {JUMP:,} seqs; {MAX_OBJECTS_PER_EVENT} zero-area boxes")
    print(f"/healthz afterwards                   {status} in {health_ms:.0f} ms")
    print(timedelta(seconds=round(base_s + worst_s)), "total ingest time (2-core VM, under load)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
