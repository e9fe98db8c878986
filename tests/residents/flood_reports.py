"""Flood a QR point's report page from one address with photo reports for a while; print the
status codes seen as JSON ({"201": n, "429": m, ...}).

usage: python -m tests.residents.flood_reports BASE_URL POINT SECONDS THREADS
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter

import httpx

from tests.residents.helpers import photo_jpeg


def main() -> None:
    base, point, seconds, threads = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    photo = photo_jpeg(2000, 1500)
    codes: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def flood() -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            while time.monotonic() < deadline:
                resp = client.post(
                    f"/r/{point}",
                    data={"category": "0506", "note": "flood"},
                    files={"photo": ("p.jpg", photo, "image/jpeg")},
                )
                with lock:
                    codes[str(resp.status_code)] += 1

    workers = [threading.Thread(target=flood) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(json.dumps(dict(codes)))


if __name__ == "__main__":
    main()
