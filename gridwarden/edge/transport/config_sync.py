"""The edge's side of central configuration: take new versions from the hub, keep the last good one.

The hub publishes each configuration version retained (QoS 1) on the edge's ``.../config``
topic (see :mod:`gridwarden.hub.config_push`). :class:`ConfigSync` subscribes to it and, for
each message:

* validates it with the edge's own loader (:func:`load_edge_config_text`): an invalid version
  is never applied; every problem is logged and kept in :attr:`ConfigSync.last_rejected`, and
  the edge keeps running its last good configuration;
* ignores versions not newer than the one running (the retained message comes again on every
  reconnect; an old one must not roll the edge back behind the hub's back);
* calls ``on_config(config, version)``; when that raises (the running edge cannot use it, e.g.
  a class its model lacks) the version is rejected like an invalid one; otherwise it is persisted
  as ``state_dir/config-v<N>.yaml`` plus a pointer file ``current.json`` (both written
  atomically), so a restart runs the same configuration (:func:`load_last_good`).

The broker ACL lets an edge only READ its config topic, so a rejection is reported in the edge's
log and in :attr:`last_rejected`, not on the wire (a status field for it needs a contract change).

:func:`apply_to_runner` swaps a running :class:`~gridwarden.edge.runner.EdgeRunner`'s per-camera
analytics for reconfigured ones, keeping the state of zones whose configuration did not change.

Example::

    sync = ConfigSync("north", "edge-01", MqttSettings(host="broker"),
                      on_config=lambda cfg, v: apply_to_runner(runner, cfg),
                      state_dir="/var/lib/gridwarden/config")
    sync.start()
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from gridwarden.contract import EdgeConfigMessage, SnapshotRequest, Topics
from gridwarden.edge.config import EdgeConfig, load_edge_config_text
from gridwarden.edge.transport.hub_commands import HubCommands, Refusal
from gridwarden.mqtt import MqttSettings, make_client
from gridwarden.yamlconfig import ConfigError

if TYPE_CHECKING:
    from gridwarden.edge.runner import EdgeRunner

log = logging.getLogger(__name__)

POINTER_FILE = "current.json"


@dataclass(frozen=True)
class Rejection:
    """A configuration message the edge refused, and why."""

    version: int | None
    problems: list[str]
    at: float = field(default_factory=time.time)


Outcome = Literal["applied", "rejected", "ignored"]


def _write_atomically(path: Path, data: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_last_good(state_dir: str | Path) -> tuple[EdgeConfig, int] | None:
    """The configuration last accepted from the hub and its version, or ``None`` if there is none
    (or its file no longer validates: then the edge starts from its local file)."""
    state = Path(state_dir)
    try:
        pointer = json.loads((state / POINTER_FILE).read_text(encoding="utf-8"))
        path = state / pointer["file"]
        return load_edge_config_text(path.read_text(encoding="utf-8"), source=str(path)), int(
            pointer["version"]
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:  # ConfigError is a ValueError
        log.error("last good configuration in %s is unusable: %s", state, exc)
        return None


class ConfigSync:
    """Follows the edge's configuration topic; see the module docstring."""

    def __init__(
        self,
        site: str,
        edge_id: str,
        mqtt_settings: MqttSettings,
        on_config: Callable[[EdgeConfig, int], None],
        state_dir: str | Path,
        *,
        running_version: int | None = None,
        on_snapshot_request: Callable[[str | None], None] | None = None,
    ) -> None:
        self.site = site
        self.edge_id = edge_id
        self.settings = mqtt_settings
        self.on_config = on_config
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.topic = Topics(site, edge_id).config
        # The hub's other requests to this edge ride on the same connection.
        self.snapshot_topic = Topics(site, edge_id).snapshot_request
        self.on_snapshot_request = on_snapshot_request
        # Both channels go through the edge's one dispatcher of hub -> edge messages.
        self.commands = HubCommands(site, edge_id)
        self.commands.on("config", EdgeConfigMessage, self._apply_message, on_refused=self._refused)
        if on_snapshot_request is not None:
            self.commands.on("snapshot_request", SnapshotRequest, self._snapshot_requested)
        if running_version is None:
            last = load_last_good(self.state_dir)
            running_version = last[1] if last else None
        self.running_version = running_version
        self.last_rejected: Rejection | None = None
        # Counters of messages handled, for status and tests.
        self.seen = 0
        self.applied = 0
        self.rejected = 0
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = self._make_client()
        self._started = False

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        # Its own connection, beside the incident publisher's: the client id must differ from it.
        client = make_client(s, client_id=f"{s.client_id or self.edge_id}-config")
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    # -- paho callbacks ------------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            log.error(
                "config sync: broker %s:%s refused the connection: %s",
                self.settings.host,
                self.settings.port,
                reason,
            )
            return
        client.subscribe(self.commands.subscriptions())

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
        if any(getattr(r, "is_failure", False) for r in reasons):
            log.error("config sync: subscription to %s refused: %s", self.topic, reasons)
            return
        self._subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            self.commands.dispatch(message.topic, bytes(message.payload))
        except Exception:  # a bug here must not kill paho's network thread
            log.exception("config sync: handling a message on %s failed", message.topic)

    # -- public API ----------------------------------------------------------------------------

    def start(self, wait_s: float = 0.0) -> bool:
        """Connect in the background; optionally wait up to ``wait_s`` for the subscription."""
        if not self._started:
            s = self.settings
            self._client.connect_async(s.host, s.port, keepalive=s.keepalive)
            self._client.loop_start()
            self._started = True
        return self._subscribed.wait(wait_s) if wait_s > 0 else self._subscribed.is_set()

    def stop(self) -> None:
        if self._started:
            self._client.disconnect()
            self._client.loop_stop()
            self._started = False
        self._subscribed.clear()

    def handle_snapshot_request(self, payload: bytes) -> bool:
        """Pass a valid request for this edge to ``on_snapshot_request``; ignore anything else."""
        return self.commands.dispatch(self.snapshot_topic, payload) is True

    def _snapshot_requested(self, request: SnapshotRequest) -> bool:
        assert self.on_snapshot_request is not None
        log.info("snapshot of %s requested by %s", request.camera or "every camera", request.requested_by)
        self.on_snapshot_request(request.camera)
        return True

    def handle_payload(self, payload: bytes) -> Outcome:
        """Validate, persist and apply one configuration message (see the module docstring)."""
        result = self.commands.dispatch(self.topic, payload)
        return "rejected" if isinstance(result, Refusal) else result

    def _refused(self, refusal: Refusal) -> None:
        """A configuration message the dispatcher refused (not JSON, not the model, other edge)."""
        with self._lock:
            self.seen += 1
            self._reject(refusal.version, [refusal.reason])

    def _apply_message(self, message: EdgeConfigMessage) -> Outcome:
        with self._lock:
            self.seen += 1
            version = message.version
            if self.running_version is not None and version <= self.running_version:
                log.debug("config v%d ignored: running v%d", version, self.running_version)
                return "ignored"
            if hashlib.sha256(message.yaml.encode("utf-8")).hexdigest() != message.sha256:
                return self._reject(version, ["sha256 does not match the YAML text (corrupted message)"])
            source = f"config-v{version}.yaml"
            try:
                config = load_edge_config_text(message.yaml, source=source)
            except ConfigError as exc:
                return self._reject(version, [str(p) for p in exc.problems])
            if config.edge_id != self.edge_id:
                return self._reject(
                    version, [f"{source}: edge_id: is {config.edge_id!r}, not {self.edge_id!r}"]
                )
            # Applied first, persisted second: a version the edge cannot run (a class its model
            # lacks, say) must not become the last good one; a crash in between is harmless, since
            # the retained message brings the version again on reconnect.
            try:
                self.on_config(config, version)
            except Exception as exc:
                log.exception("config v%d could not be applied", version)
                return self._reject(version, [f"{source}: could not be applied: {exc}"])
            self._persist(version, message)
            self.running_version = version
            log.info("config v%d from %s applied", version, message.author)
            self.applied += 1
            return "applied"

    def _persist(self, version: int, message: EdgeConfigMessage) -> None:
        name = f"config-v{version}.yaml"
        _write_atomically(self.state_dir / name, message.yaml)
        pointer = {"version": version, "file": name, "sha256": message.sha256, "author": message.author}
        _write_atomically(self.state_dir / POINTER_FILE, json.dumps(pointer) + "\n")

    def _reject(self, version: int | None, problems: list[str]) -> Outcome:
        self.last_rejected = Rejection(version, problems)
        self.rejected += 1
        running = f"v{self.running_version}" if self.running_version is not None else "the local file"
        log.error("config %s REJECTED; still running %s:", f"v{version}" if version else "message", running)
        for problem in problems:
            log.error("  %s", problem)
        return "rejected"


@dataclass(frozen=True)
class ApplyResult:
    """What :func:`apply_to_runner` did."""

    reconfigured: list[str]
    needs_restart: list[str]


def apply_to_runner(runner: EdgeRunner, new_config: EdgeConfig) -> ApplyResult:
    """Reconfigure a live runner's cameras in place.

    Each running camera's :class:`CameraAnalytics` is replaced by ``analytics.reconfigured(...)``
    with one dict item assignment (atomic under the GIL; the analysis loop looks the camera up
    per frame), so zones whose configuration did not change keep their timers and open
    incidents. What cannot change live (cameras added or removed, a camera's source, the model,
    MQTT, evidence) is logged as needing a restart and otherwise left as it runs.
    """
    needs_restart: list[str] = []
    wanted = {c.id: c for c in new_config.cameras if c.enabled}
    running = set(runner.analytics)
    for cam_id in sorted(set(wanted) - running):
        needs_restart.append(f"camera {cam_id} added or enabled")
    for cam_id in sorted(running - set(wanted)):
        needs_restart.append(f"camera {cam_id} removed or disabled (it keeps running until a restart)")
    old = runner.config
    for section in ("model", "mqtt", "evidence", "hub", "site", "edge_id", "data_dir"):
        if getattr(old, section) != getattr(new_config, section):
            needs_restart.append(f"{section} changed")
    # Every camera is rebuilt before any is swapped: a configuration that fails for one camera
    # (raises here) leaves all of them on the old one.
    rebuilt = {}
    for cam_id in sorted(running & set(wanted)):
        cam = wanted[cam_id]
        current = runner.analytics[cam_id]
        for fld in (
            "url",
            "inputs",
            "transport",
            "analysis_fps",
            "keyframes_only",
            "stall_timeout_s",
            "evidence",
        ):
            if getattr(current.camera, fld) != getattr(cam, fld):
                needs_restart.append(f"camera {cam_id}: {fld} changed")
        rebuilt[cam_id] = current.reconfigured(cam, new_config)
    for cam_id, analytics in rebuilt.items():
        runner.analytics[cam_id] = analytics
    reconfigured = list(rebuilt)
    # The runner frames evidence snapshots with its zone polygons: keep them in step.
    if hasattr(runner, "_zone_polygons"):
        polygons = dict(runner._zone_polygons)
        polygons.update({(c, z.id): z.polygon for c in reconfigured for z in wanted[c].zones})
        runner._zone_polygons = polygons
    runner.config = new_config
    for reason in needs_restart:
        log.warning("config change needs a restart to take effect: %s", reason)
    return ApplyResult(reconfigured, needs_restart)
