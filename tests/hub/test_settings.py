"""Hub settings from the environment."""

from __future__ import annotations

import re

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


def test_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from gridwarden.cli import build_parser
    from gridwarden.hub.serve_cli import settings_from_args

    monkeypatch.setenv("GRIDWARDEN_HUB_MQTT_PORT", "1884")
    monkeypatch.setenv("GRIDWARDEN_HUB_MERGE_IOU", "0.5")
    args = build_parser().parse_args(["hub", "serve", "--mqtt-port", "1885", "--no-request-replays"])
    s = settings_from_args(args)
    assert (s.mqtt_port, s.merge_iou, s.request_replays) == (1885, 0.5, False)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--mqtt-port", "0"], "--mqtt-port / $GRIDWARDEN_HUB_MQTT_PORT"),
        (["--webhook-url", "ftp://x"], "webhook_url must be http(s)"),
        (["--webhook-url", "https://x/hook"], "needs webhook_secret_file"),
        (["--webhook-secret-file", "/nonexistent/secret"], "cannot read /nonexistent/secret"),
    ],
)
def test_hub_serve_refuses_bad_settings_before_starting(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gridwarden.cli import main

    monkeypatch.delenv("GRIDWARDEN_HUB_WEBHOOK_SECRET", raising=False)
    assert main(["hub", "serve", *argv]) == 2
    assert named in capsys.readouterr().err


def test_every_setting_but_the_secrets_is_a_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from gridwarden.cli import main

    with pytest.raises(SystemExit):
        main(["hub", "serve", "--help"])
    text = capsys.readouterr().out
    for name in HubSettings.model_fields:
        flag = "--" + name.replace("_", "-")
        offered = re.search(re.escape(flag) + r"[ ,\]]", text) is not None
        assert offered == (name not in ("mqtt_password", "webhook_secret", "open311_forward_api_key")), flag
