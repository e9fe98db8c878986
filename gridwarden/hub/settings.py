"""Hub settings: one typed object, read from ``GRIDWARDEN_HUB_*`` environment variables.

Defaults suit the embedded single-box install (SQLite under ``var/``, a broker on loopback); a
production hub sets ``GRIDWARDEN_HUB_DATABASE_URL=postgresql+psycopg://...``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

ENV_PREFIX = "GRIDWARDEN_HUB_"
DEFAULT_DATABASE_URL = "sqlite:///var/hub.db"
DEFAULT_EVIDENCE_ROOT = "var/hub/evidence"


class HubSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    database_url: str = DEFAULT_DATABASE_URL
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    # Hub processes that share this group split the incident stream between them.
    mqtt_group: str = Field(default="hub", pattern=r"^[A-Za-z0-9_-]+$")
    mqtt_client_id: str | None = None
    batch_max: int = Field(default=200, ge=1, le=10_000)
    batch_wait_s: float = Field(default=0.02, gt=0.0, le=5.0)
    # Two incidents of the same camera, zone and object this close together are one case.
    merge_window_s: float = Field(default=120.0, ge=0.0)
    merge_iou: float = Field(default=0.3, gt=0.0, le=1.0)
    # The district's target from detection to each case milestone.
    sla_target_s: float = Field(default=600.0, gt=0.0)
    # Evidence files uploaded by edges. None: an "evidence" folder beside a SQLite database, or
    # var/hub/evidence (relative to the working directory) for a server database.
    evidence_root: str | None = None
    evidence_max_upload_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    # Retention, applied hourly: older files go first, then the oldest until the total fits.
    evidence_retention_days: float | None = Field(default=90.0, gt=0.0)
    evidence_max_total_bytes: int | None = Field(default=None, gt=0)
    # Each edge's uploads together (507 quota_exceeded beyond): one edge cannot fill the disk.
    evidence_quota_bytes_per_edge: int | None = Field(default=20 * 1024**3, gt=0)
    # Dry runs replay clips with a candidate configuration, so the hub needs the edge's model
    # file: at the config's model.path, or here (by relative path or file name).
    model_dir: str | None = None

    @field_validator(
        "evidence_retention_days",
        "evidence_max_total_bytes",
        "evidence_quota_bytes_per_edge",
        "evidence_root",
        "model_dir",
        mode="before",
    )
    @classmethod
    def _blank_means_none(cls, value: object) -> object:
        # From the environment, GRIDWARDEN_HUB_EVIDENCE_RETENTION_DAYS= (or "none") lifts the limit.
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return None
        return value

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

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HubSettings:
        """Build settings from ``GRIDWARDEN_HUB_<FIELD>`` variables; unknown fields are ignored."""
        env = os.environ if environ is None else environ
        values = {
            name: env[ENV_PREFIX + name.upper()]
            for name in cls.model_fields
            if ENV_PREFIX + name.upper() in env
        }
        return cls.model_validate(values)
