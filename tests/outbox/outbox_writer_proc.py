"""Child process for the SIGKILL test: enqueue events in a tight loop until killed.

After each committed enqueue it prints ``<seq>`` and flushes, so the parent knows a lower bound
of what was committed when it sends SIGKILL.

    python -m tests.outbox.outbox_writer_proc OUTBOX_PATH
"""

from __future__ import annotations

import sys

from gridwarden.edge.transport.outbox import Outbox
from tests.outbox.events import make_event


def main() -> None:
    outbox = Outbox(sys.argv[1], max_rows=1_000_000)
    print("ready", flush=True)
    index = outbox.last_seq()
    while True:
        stored = outbox.enqueue(make_event(index))
        print(stored.seq, flush=True)
        index += 1


if __name__ == "__main__":
    main()
