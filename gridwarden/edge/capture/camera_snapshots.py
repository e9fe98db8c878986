"""Uploads each camera's newest frame to the hub now and then, so integrators can draw zones on it.

The analysis loop calls :meth:`CameraSnapshotUploader.offer` for every frame; that only stores a
reference (no copy, no encoding: frames are not mutated after decoding). A background thread
encodes and uploads a camera's newest frame when the camera is first seen and then every
``interval_s``. A failed upload is retried at the next wake-up; nothing queues up.
"""

from __future__ import annotations

import logging
import threading
import time

import cv2
import httpx

from gridwarden.edge.types import Frame

log = logging.getLogger(__name__)

JPEG_QUALITY = 80
RETRY_S = 30.0


class CameraSnapshotUploader:
    """``hub_url``: the hub's base URL; ``token``: the edge's bearer token; ``edge_id``: this edge."""

    def __init__(
        self, hub_url: str, token: str, interval_s: float = 300.0, *, edge_id: str, timeout_s: float = 10.0
    ) -> None:
        self.hub_url = hub_url.rstrip("/")
        self.edge_id = edge_id
        self.interval_s = interval_s
        self._client = httpx.Client(timeout=timeout_s, headers={"Authorization": f"Bearer {token}"})
        self._latest: dict[str, Frame] = {}
        self._due: dict[str, float] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.uploaded = 0
        self.failed = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="camera-snapshots", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._client.close()

    def offer(self, camera_id: str, frame: Frame) -> None:
        """Remember ``frame`` as the camera's newest; cheap enough for every analysed frame."""
        with self._lock:
            self._latest[camera_id] = frame
            if camera_id not in self._due:
                self._due[camera_id] = 0.0  # a camera that (re)starts is uploaded at once
                self._wake.set()

    def request(self, camera_id: str | None = None) -> None:
        """Upload now (the hub asked: an integrator opened the zone editor); ``None`` = all cameras."""
        with self._lock:
            for cam in self._due:
                if camera_id is None or cam == camera_id:
                    self._due[cam] = 0.0
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            with self._lock:
                ready = [(cam, self._latest[cam]) for cam, due in self._due.items() if due <= now]
            for camera_id, frame in ready:
                ok = self._upload(camera_id, frame)
                with self._lock:
                    self._due[camera_id] = time.monotonic() + (self.interval_s if ok else RETRY_S)
            with self._lock:
                next_due = min(self._due.values(), default=now + self.interval_s)
            self._wake.wait(max(0.05, next_due - time.monotonic()))
            self._wake.clear()

    def _upload(self, camera_id: str, frame: Frame) -> bool:
        ok, buffer = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            self.failed += 1
            return False
        url = f"{self.hub_url}/api/v1/cameras/{self.edge_id}/{camera_id}/snapshot"
        try:
            response = self._client.put(url, content=buffer.tobytes(), headers={"Content-Type": "image/jpeg"})
            response.raise_for_status()
        except httpx.HTTPError as exc:
            self.failed += 1
            log.warning("snapshot upload of %s failed: %s", camera_id, exc)
            return False
        self.uploaded += 1
        return True
