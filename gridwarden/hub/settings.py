"""Hub settings: one typed object, read from ``GRIDWARDEN_HUB_*`` environment variables.

Defaults suit the embedded single-box install (SQLite under ``var/``, a broker on loopback); a
production hub sets ``GRIDWARDEN_HUB_DATABASE_URL=postgresql+psycopg://...``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

ENV_PREFIX = "GRIDWARDEN_HUB_"
DEFAULT_DATABASE_URL = "sqlite:///var/hub.db"


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
