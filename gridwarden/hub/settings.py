"""Hub settings: one typed object from ``GRIDWARDEN_HUB_*`` environment variables and the command line.

Why pydantic-settings: the hub is configured by systemd ``Environment=`` lines, by ``hub serve``
flags and by tests constructing it in-process; one :class:`HubSettings` class reads the
environment, takes the flags as keyword arguments (which win over the environment), and
validates everything at start, so a typo in a port or a webhook URL stops the hub with one line
naming the setting instead of failing at the first request.

Defaults suit the embedded single-box install (SQLite under ``var/``, a broker on loopback); a
production hub sets ``GRIDWARDEN_HUB_DATABASE_URL=postgresql+psycopg://...``. Secrets (the broker
password, the webhook secret) come from the environment or from a file, never from a flag, where
any local user could read them in the process list.

>>> HubSettings.from_env({"GRIDWARDEN_HUB_MQTT_PORT": "1884"}).mqtt_port
1884
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "GRIDWARDEN_HUB_"
DEFAULT_DATABASE_URL = "sqlite:///var/hub.db"
DEFAULT_EVIDENCE_ROOT = "var/hub/evidence"


class HubSettings(BaseSettings):
    """Everything a hub process needs to know; see each field's description (also ``--help``)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL, description="database URL (sqlite:///... or postgresql+psycopg://...)"
    )
    migrate: bool = Field(default=True, description="run database migrations at start")
    host: str = Field(default="127.0.0.1", description="address the API listens on")
    port: int = Field(default=8080, ge=0, le=65535, description="port the API listens on")
    log_level: str = Field(default="INFO", pattern=r"^(?i:debug|info|warning|error|critical)$")

    mqtt_host: str = Field(default="127.0.0.1", description="broker host")
    mqtt_port: int = Field(default=1883, ge=1, le=65535, description="broker port")
    mqtt_username: str | None = Field(default=None, description="broker user name of the hub")
    mqtt_password: SecretStr | None = Field(default=None, description="broker password (env only)")
    mqtt_password_file: Path | None = Field(
        default=None, description="file holding the hub's broker password"
    )
    mqtt_tls_ca: Path | None = Field(
        default=None, description="CA certificate file: connect to the broker over TLS, verifying it"
    )
    mqtt_tls_cert: Path | None = Field(
        default=None, description="client certificate, for a broker that requires one (with --mqtt-tls-key)"
    )
    mqtt_tls_key: Path | None = Field(default=None, description="private key of the client certificate")
    mqtt_group: str = Field(
        default="hub",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="shared-subscription group: hub processes in one group split the incident stream",
    )
    mqtt_client_id: str | None = Field(
        default=None, description="stable MQTT client id of this hub process (default: hub-<group>)"
    )

    batch_max: int = Field(default=200, ge=1, le=10_000, description="most messages stored per transaction")
    batch_wait_s: float = Field(
        default=0.02, gt=0.0, le=5.0, description="longest wait for a batch to fill after its first message"
    )
    # Resend requests (gridwarden.hub.resend_requests). The field names, hence the flags
    # ``--[no-]request-replays`` / ``--replay-*`` and the ``GRIDWARDEN_HUB_*REPLAY*`` variables,
    # keep the older word so existing unit files and environments keep working.
    request_replays: bool = Field(
        default=True, description="ask edges to send again the events that a broker lost"
    )
    replay_settle_s: float = Field(
        default=2.0,
        ge=0.0,
        description="how long a seq must stay missing in the database before its edge is asked for it",
    )
    replay_retry_s: float = Field(default=5.0, gt=0.0, description="how long before asking for a seq again")
    stats_file: Path | None = Field(
        default=None, description="write the ingest counters here as JSON every second and at exit"
    )

    merge_window_s: float = Field(
        default=120.0,
        ge=0.0,
        description="two incidents of one camera, zone and object this close together are one case",
    )
    merge_iou: float = Field(default=0.3, gt=0.0, le=1.0, description="box overlap that makes 'one object'")
    sla_target_s: float = Field(
        default=600.0, gt=0.0, description="the district's target from detection to each case milestone"
    )

    evidence_root: str | None = Field(
        default=None,
        description="folder for uploaded clips and snapshots (default: 'evidence' beside a SQLite "
        "database, else var/hub/evidence)",
    )
    evidence_max_upload_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    # Retention, applied hourly: older files go first, then the oldest until the total fits.
    evidence_retention_days: float | None = Field(default=90.0, gt=0.0, description="'none': keep forever")
    evidence_max_total_bytes: int | None = Field(default=None, gt=0, description="'none': no size limit")
    # Each edge's uploads together (507 quota_exceeded beyond): one edge cannot fill the disk.
    evidence_quota_bytes_per_edge: int | None = Field(
        default=20 * 1024**3, gt=0, description="most bytes of evidence one edge may store ('none': no limit)"
    )
    # Dry runs replay clips with a candidate configuration, so the hub needs the edge's model
    # file: at the config's model.path, or here (by relative path or file name).
    model_dir: str | None = Field(default=None, description="folder of the edges' model files, for dry runs")
    dry_run_max_upload_bytes: int = Field(default=512 * 1024 * 1024, gt=0)

    webhook_url: str | None = Field(
        default=None, description="POST confirmed cases here, signed with the shared secret"
    )
    webhook_secret: SecretStr | None = Field(default=None, description="webhook secret (env only)")
    webhook_secret_file: Path | None = Field(default=None, description="file holding the webhook secret")
    webhook_backoff_s: float = Field(default=2.0, gt=0.0, description="first webhook retry delay (doubles)")
    webhook_backoff_max_s: float = Field(default=600.0, gt=0.0, description="longest webhook retry delay")

    # Residents and the city (gridwarden.hub.reports).
    category_table: str | None = Field(
        default=None,
        description="YAML table of city event codes (数字城管) cases are mapped to (default: built in)",
    )
    closure_limit_s: float = Field(default=86400.0, gt=0.0, description="按期结案 (on-time closure) limit")
    timezone: str = Field(
        default="Asia/Shanghai", description="time zone statistics' days and weeks start in"
    )
    basemap_mbtiles: str | None = Field(
        default=None,
        description="MBTiles or PMTiles file of raster tiles the one map shows offline (default: plain background)",
    )
    map_outline: str | None = Field(
        default=None, description="GeoJSON of streets and boundaries the one map draws without a basemap"
    )
    public_url: str | None = Field(
        default=None,
        description="the hub's address as residents and other systems reach it (Open311 media_url)",
    )
    open311_forward_url: str | None = Field(
        default=None, description="forward confirmed cases to this GeoReport v2 endpoint (.../open311/v2)"
    )
    open311_forward_api_key: SecretStr | None = Field(
        default=None, description="that endpoint's api_key (env only)"
    )
    open311_forward_api_key_file: Path | None = Field(default=None, description="file holding that api_key")
    open311_forward_since: datetime | None = Field(
        default=None, description="forward cases confirmed at or after this time (default: all)"
    )

    @field_validator(
        "evidence_retention_days",
        "evidence_max_total_bytes",
        "evidence_quota_bytes_per_edge",
        "evidence_root",
        "model_dir",
        "mqtt_tls_ca",
        "mqtt_tls_cert",
        "mqtt_tls_key",
        "webhook_url",
        "category_table",
        "basemap_mbtiles",
        "map_outline",
        "public_url",
        "open311_forward_url",
        "open311_forward_since",
        mode="before",
    )
    @classmethod
    def _blank_means_none(cls, value: object) -> object:
        # From the environment, GRIDWARDEN_HUB_EVIDENCE_RETENTION_DAYS= (or "none") lifts the limit.
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return None
        return value

    @model_validator(mode="after")
    def _secrets_and_webhook(self) -> HubSettings:
        # Secret files are read here, at start, so a missing or empty file stops the hub at once.
        for file_field, secret_field in (
            ("mqtt_password_file", "mqtt_password"),
            ("webhook_secret_file", "webhook_secret"),
            ("open311_forward_api_key_file", "open311_forward_api_key"),
        ):
            path: Path | None = getattr(self, file_field)
            if path is None:
                continue
            try:
                secret = path.read_text().strip()
            except OSError as exc:
                raise ValueError(f"{file_field}: cannot read {path}: {exc.strerror or exc}") from None
            if not secret:
                raise ValueError(f"{file_field}: {path} is empty")
            object.__setattr__(self, secret_field, SecretStr(secret))
        if self.webhook_url is not None:
            if not self.webhook_url.startswith(("http://", "https://")):
                raise ValueError(f"webhook_url must be http(s)://..., got {self.webhook_url!r}")
            if self.webhook_secret is None:
                raise ValueError(
                    f"webhook_url needs webhook_secret_file or ${ENV_PREFIX}WEBHOOK_SECRET (a shared secret)"
                )
        if self.open311_forward_url is not None and (
            not self.open311_forward_url.startswith(("http://", "https://"))
            or self.open311_forward_api_key is None
        ):
            raise ValueError(
                "open311_forward_url must be http(s)://.../open311/v2 and needs its api_key "
                f"(${ENV_PREFIX}OPEN311_FORWARD_API_KEY or open311_forward_api_key_file)"
            )
        return self

    def resolved_evidence_root(self) -> Path:
        """Where evidence lives: ``evidence_root``, else beside the SQLite file (see above)."""
        if self.evidence_root:
            return Path(self.evidence_root)
        for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
            if self.database_url.startswith(prefix):
                db_path = self.database_url[len(prefix) :].split("?", 1)[0]
                if db_path and db_path != ":memory:":
                    return Path(db_path).parent / "evidence"
        return Path(DEFAULT_EVIDENCE_ROOT)

    def mqtt_tls(self) -> tuple[str | None, str | None, str | None]:
        """(CA, client certificate, client key) as :class:`gridwarden.mqtt.MqttSettings` takes them."""
        ca, cert, key = self.mqtt_tls_ca, self.mqtt_tls_cert, self.mqtt_tls_key
        return (str(ca) if ca else None, str(cert) if cert else None, str(key) if key else None)

    def mqtt_password_value(self) -> str | None:
        return self.mqtt_password.get_secret_value() if self.mqtt_password is not None else None

    def webhook_secret_value(self) -> bytes | None:
        return self.webhook_secret.get_secret_value().encode() if self.webhook_secret is not None else None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> HubSettings:
        """Settings from ``environ`` (default: the process environment) plus ``overrides``, which win.

        With an explicit mapping only that mapping is read, so tests do not depend on the caller's
        environment."""
        if environ is None:
            return cls(**overrides)
        values = {
            name: environ[ENV_PREFIX + name.upper()]
            for name in cls.model_fields
            if ENV_PREFIX + name.upper() in environ
        }
        return cls.model_validate({**values, **overrides})


def env_names() -> dict[str, str]:
    """Field name -> its environment variable, for error messages and ``--help``."""
    return {name: ENV_PREFIX + name.upper() for name in HubSettings.model_fields}
