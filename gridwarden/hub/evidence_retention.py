"""The evidence store's retention policy, applied now and then on a daemon thread of the hub."""

from __future__ import annotations

import logging
import threading

from gridwarden.hub.evidence_store import EvidenceStore

PRUNE_INTERVAL_S = 3600.0

log = logging.getLogger("gridwarden.hub.evidence")


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
