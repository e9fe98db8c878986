"""Real MQTT clients and hub child processes for the broker tests."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.paths import REPO_ROOT
from tests.support.ports import free_port


def wait_until(
    predicate: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout}s (last value {value!r})")
        time.sleep(interval)


class Publisher:
    """An edge-like publisher: QoS 1, many messages in flight."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-pub-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
        )
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish_all(
        self, pairs: Iterable[tuple[str, bytes]], *, rate_per_s: float | None = None, retain: bool = False
    ) -> None:
        """Publish in order (optionally paced) and wait until the broker acknowledged all."""
        infos = []
        start = time.monotonic()
        for i, (topic, payload) in enumerate(pairs):
            if rate_per_s:
                delay = start + i / rate_per_s - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            infos.append(self.client.publish(topic, payload, qos=1, retain=retain))
        for info in infos:
            info.wait_for_publish(timeout=30)
            if not info.is_published():
                raise TimeoutError("broker did not acknowledge a publish")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class HubProcess:
    """``gridwarden hub serve`` as a child process, as systemd runs it (API on a free port)."""

    def __init__(self, db_url: str, port: int, client_id: str, workdir: Path, group: str = "hub") -> None:
        self.client_id = client_id
        self.stats_file = workdir / f"{client_id}.stats.json"
        self.log_path = workdir / f"{client_id}.log"
        self.args = [
            sys.executable, "-m", "gridwarden.cli", "hub", "serve", "--db", db_url, "--mqtt-port", str(port),
            "--client-id", client_id, "--group", group, "--stats-file", str(self.stats_file), "--no-migrate",
            "--port", str(free_port()), "--evidence-root", str(workdir / f"{client_id}-evidence"),
        ]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout: float = 60.0) -> HubProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(self.args, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=log)
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if sel.select(timeout=0.5):
                line = self.proc.stdout.readline()  # type: ignore[union-attr]
                if line.startswith(b"ready"):
                    return self
                if not line:
                    break
        raise RuntimeError(
            f"hub {self.client_id} did not get ready; log:\n{self.log_path.read_text()[-3000:]}"
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> dict[str, Any]:
        """Stop gracefully and return the process's final stats."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        assert self.proc.returncode == 0, self.log_path.read_text()[-3000:]
        return json.loads(self.stats_file.read_text())

    def stop_quietly(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
