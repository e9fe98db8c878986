"""Child process for the publisher outage test: a stand-in edge that enqueues the scripted event
stream at a fixed rate through :class:`IncidentPublisher`, then drains and exits.

It resumes the stream where the outbox's seq counter says the previous run stopped (event index
== seq - 1), which stands in for the pipeline's own state recovery after a crash.

    python -m tests.outbox.edge_publisher_proc OUTBOX PORT --count 1000 --rate 100 --keepalive 2

Exit status 0 when everything was enqueued and the outbox drained, 1 otherwise.

With ``--serve`` it stays connected after draining, as a real edge does, so that it can answer
the hub's replay requests, until SIGTERM; then it drains again and exits (0 when drained).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time

from gridwarden.edge.transport.outbox import Outbox
from gridwarden.edge.transport.publisher import IncidentPublisher, MqttSettings
from tests.outbox.events import EDGE_ID, SITE, make_event


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("outbox")
    parser.add_argument("port", type=int)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0, help="events per second")
    parser.add_argument("--keepalive", type=int, default=2)
    parser.add_argument("--drain-timeout", type=float, default=60.0)
    parser.add_argument("--status-interval", type=float, default=10.0)
    parser.add_argument("--serve", action="store_true", help="after draining, keep serving until SIGTERM")
    parser.add_argument("--username", help="broker user (the edge id, on a broker with the shipped rights)")
    parser.add_argument("--password-env", help="environment variable holding the broker password")
    args = parser.parse_args()
    terminated = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: terminated.set())
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="edge %(levelname)s %(name)s: %(message)s"
    )

    outbox = Outbox(args.outbox)
    publisher = IncidentPublisher(
        site=SITE,
        edge_id=EDGE_ID,
        outbox=outbox,
        mqtt=MqttSettings(
            port=args.port,
            keepalive=args.keepalive,
            reconnect_min_delay=1,
            reconnect_max_delay=2,
            username=args.username,
            password=os.environ.get(args.password_env) if args.password_env else None,
        ),
        status_interval_s=args.status_interval,
    )
    publisher.start()
    start_index = outbox.last_seq()
    print(f"resuming at event {start_index}", flush=True)
    t0 = time.monotonic()
    for n, index in enumerate(range(start_index, args.count)):
        delay = t0 + n / args.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        publisher.publish_incident(make_event(index))
    print("enqueued all", flush=True)
    drained = publisher.wait_drained(args.drain_timeout)
    if args.serve:
        print("drained, serving" if drained else "NOT drained, serving", flush=True)
        terminated.wait()
        drained = publisher.wait_drained(args.drain_timeout)
        print(f"served {publisher.resends_served} resend request(s)", flush=True)
    publisher.stop(timeout=5.0)
    outbox.close()
    print("drained" if drained else "NOT drained", flush=True)
    return 0 if drained else 1


if __name__ == "__main__":
    sys.exit(main())
