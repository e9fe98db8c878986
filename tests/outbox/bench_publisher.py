"""Measure the outbox and publisher: enqueue cost and end-to-end events/s into a local broker,
for ``synchronous=FULL`` and ``NORMAL``. Not a test (no assertions on speed): run by hand.

    .venv/bin/python -m tests.outbox.bench_publisher [--events 5000]

"Sustained" is publish_incident() in a tight loop from one thread while the sender drains
concurrently, timed until the outbox is empty (every event PUBACKed and deleted).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from gridwarden.edge.transport.outbox import Outbox, SyncMode
from gridwarden.edge.transport.publisher import IncidentPublisher, MqttSettings
from tests.outbox.events import EDGE_ID, SITE, make_event
from tests.support.mosquitto import MosquittoBroker


def fsync_latency_us(path: Path, n: int = 200) -> float:
    """The disk's own fsync cost, for context: FULL pays about one of these per enqueue."""
    samples = []
    with open(path, "wb") as f:
        for _ in range(n):
            f.write(b"x" * 4096)
            f.flush()
            t0 = time.perf_counter()
            os.fsync(f.fileno())
            samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


def enqueue_cost_us(path: Path, sync: SyncMode, n: int) -> float:
    events = [make_event(i) for i in range(n)]
    with Outbox(path, synchronous=sync) as box:
        t0 = time.perf_counter()
        for e in events:
            box.enqueue(e)
        return (time.perf_counter() - t0) / n * 1e6


def sustained_events_per_s(path: Path, sync: SyncMode, n: int, port: int) -> float:
    events = [make_event(i) for i in range(n)]
    with Outbox(path, synchronous=sync) as box:
        pub = IncidentPublisher(
            site=SITE, edge_id=EDGE_ID, outbox=box, mqtt=MqttSettings(port=port), inflight=100
        )
        pub.start()
        assert pub.wait_connected(10), pub.last_error
        t0 = time.perf_counter()
        for e in events:
            pub.publish_incident(e)
        assert pub.wait_drained(120)
        elapsed = time.perf_counter() - t0
        pub.stop()
        return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp:
        os.chmod(tmp, 0o777)
        broker = MosquittoBroker(Path(tmp) / ".", persistence=False)
        broker.start()
        try:
            print(f"disk fsync (4 KiB append) median {fsync_latency_us(Path(tmp) / 'fsync.bin'):.0f} us")
            for sync in ("FULL", "NORMAL"):
                costs, rates = [], []
                for r in range(args.repeat):
                    costs.append(enqueue_cost_us(Path(tmp) / f"enq-{sync}-{r}.db", sync, args.events))
                    rates.append(
                        sustained_events_per_s(
                            Path(tmp) / f"pub-{sync}-{r}.db", sync, args.events, broker.port
                        )
                    )
                print(
                    f"synchronous={sync:6s} enqueue {statistics.median(costs):7.1f} us/event (median of {args.repeat}, "
                    f"min {min(costs):.1f})   publisher {statistics.median(rates):7.0f} events/s "
                    f"(median, min {min(rates):.0f}, max {max(rates):.0f}) for {args.events} events"
                )
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
