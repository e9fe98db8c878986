"""Hub settings from the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gridwarden.hub.settings import DEFAULT_DATABASE_URL, HubSettings


def test_defaults_and_environment_overrides() -> None:
    assert HubSettings.from_env({}).database_url == DEFAULT_DATABASE_URL
    s = HubSettings.from_env(
        {
            "GRIDWARDEN_HUB_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/gw",
            "GRIDWARDEN_HUB_MQTT_PORT": "1884",
            "GRIDWARDEN_HUB_MERGE_WINDOW_S": "90",
            "UNRELATED": "x",
        }
    )
    assert (s.database_url, s.mqtt_port, s.merge_window_s, s.sla_target_s) == (
        "postgresql+psycopg://postgres@127.0.0.1:5432/gw", 1884, 90.0, 600.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "value"),
    [("MQTT_PORT", "0"), ("MQTT_GROUP", "a/b"), ("BATCH_WAIT_S", "-1"), ("SLA_TARGET_S", "0")],
)
def test_bad_values_are_refused(name: str, value: str) -> None:
    with pytest.raises(ValidationError):
        HubSettings.from_env({f"GRIDWARDEN_HUB_{name}": value})
