"""Helpers for tests that run the product's own services as child processes."""

from __future__ import annotations

import signal
import subprocess

import httpx


def is_healthy(base_url: str) -> bool:
    """Whether a hub at ``base_url`` answers its health check (False while it starts)."""
    try:
        return httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def terminate(*procs: subprocess.Popen[bytes] | None, timeout: float = 20.0) -> None:
    """SIGTERM each still-running process in order, killing any that outlives ``timeout``."""
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
