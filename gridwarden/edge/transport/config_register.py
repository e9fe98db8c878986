"""Tell the hub which configuration this edge runs, so that a new edge can be edited at once.

An edge started from its own file has no configuration on the hub, and then the console's zone
editor and dry run have nothing to work on. When the edge has a ``hub`` section it sends the
configuration it runs (``PUT /api/v1/edges/{id}/config/running``, as YAML, with its edge token)
once it starts; the hub stores it as version 1 only if it has no version of this edge (the
hub's history always wins) and sends it back on the config topic. The hub may start after the
edge, so a background thread retries until the hub answers; nothing here delays the cameras.

Relative paths of the file are sent resolved (as the edge runs them), because a version the hub
pushes back is read without the file's folder at hand.
"""

from __future__ import annotations

import logging
import threading

import httpx
import yaml

from gridwarden.edge.config import EdgeConfig

log = logging.getLogger(__name__)

RETRY_S = (2.0, 5.0, 10.0, 30.0, 60.0)


def running_config_yaml(config: EdgeConfig) -> str:
    """The configuration as YAML: the fields the file set (defaults stay implicit)."""
    document = config.model_dump(mode="json", exclude_unset=True)
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=None)


class RunningConfigRegistrar:
    """Sends ``config`` to the hub in a daemon thread until the hub answers (or ``stop``)."""

    def __init__(self, config: EdgeConfig, token: str, *, timeout_s: float = 10.0) -> None:
        assert config.hub is not None, "needs the hub section"
        self.url = f"{config.hub.url.rstrip('/')}/api/v1/edges/{config.edge_id}/config/running"
        self.text = running_config_yaml(config)
        self.verify: str | bool = config.hub.tls_ca or True
        self.token = token
        self.timeout_s = timeout_s
        self.result: dict[str, object] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="config-register", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def register_once(self) -> bool:
        """One attempt; True when the hub gave a final answer (stored, already had one, or refused)."""
        try:
            response = httpx.put(
                self.url,
                content=self.text.encode("utf-8"),
                headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/yaml"},
                timeout=self.timeout_s,
                verify=self.verify,
            )
        except httpx.HTTPError as exc:
            log.info("hub not reachable to register the running configuration yet: %s", exc)
            return False
        if response.status_code == 200:
            self.result = response.json()
            if self.result.get("registered"):
                log.info(
                    "running configuration registered at the hub as version %s", self.result.get("version")
                )
            return True
        if response.status_code in (401, 403, 404, 422):
            # Not something a retry fixes (an old hub without the route, a token without the role,
            # a file the hub refuses): say so once and carry on running.
            log.warning(
                "the hub did not take the running configuration (HTTP %d): %s",
                response.status_code,
                response.text[:500],
            )
            return True
        log.info("hub answered HTTP %d to the running configuration; retrying", response.status_code)
        return False

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            if self.register_once():
                return
            self._stop.wait(RETRY_S[min(attempt, len(RETRY_S) - 1)])
            attempt += 1
