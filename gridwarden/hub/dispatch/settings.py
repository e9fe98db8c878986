"""Dispatch settings, read from ``GRIDWARDEN_DISPATCH_*`` environment variables.

List and mapping values are JSON, e.g.
``GRIDWARDEN_DISPATCH_AUTO_DISPATCH_RULES='["static_object"]'`` or
``GRIDWARDEN_DISPATCH_SLA_LIMITS_S='{"illegal_parking": 900}'``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

ENV_PREFIX = "GRIDWARDEN_DISPATCH_"


class DispatchSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Seconds an officer has to accept an offer before it goes to the next one.
    accept_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    # A position older than this does not count for dispatch.
    position_fresh_s: float = Field(default=300.0, gt=0)
    # Position history kept this long (the last known position of each officer stays).
    position_retention_days: float = Field(default=30.0, gt=0)
    # After "resolved", the camera has this long to see the object gone; else rework.
    verify_grace_s: float = Field(default=120.0, gt=0)
    # Cases of these rules (categories) are dispatched at once, without waiting for confirmation.
    auto_dispatch_rules: list[str] = Field(default_factory=list)
    # The district's target from detection to closure, and per-category limits that replace it.
    sla_target_s: float = Field(default=600.0, gt=0)
    sla_limits_s: dict[str, float] = Field(default_factory=dict)
    max_tasks_per_officer: int = Field(default=3, ge=1, le=50)
    # Great-circle distance times this factor is the street distance (the default estimator).
    detour_factor: float = Field(default=1.4, ge=1.0, le=5.0)
    speeds_mps: dict[str, float] = Field(default_factory=lambda: {"foot": 1.3, "ebike": 4.2, "car": 6.9})
    # "package.module:factory" returning a TravelTimeEstimator (see estimator.py); None: great circle.
    estimator: str | None = None
    interval_s: float = Field(default=1.0, gt=0, le=60)
    # The time zone officers' shift windows are written in.
    timezone: str = "Asia/Shanghai"

    def limit_s(self, category: str) -> float:
        return self.sla_limits_s.get(category, self.sla_target_s)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DispatchSettings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name, info in cls.model_fields.items():
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is None:
                continue
            origin = getattr(info.annotation, "__origin__", None)
            values[name] = json.loads(raw) if origin in (list, dict) else raw
        return cls.model_validate(values)
