"""The wire contract: messages validate, bad ones are refused, the exported schema is current."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from gridwarden.contract import (
    SCHEMA_VERSION,
    EdgeStatus,
    IncidentEvent,
    Topics,
    export_json_schemas,
    parse_topic,
)

REPO = Path(__file__).resolve().parents[2]


def make_event(**overrides: object) -> dict[str, object]:
    event: dict[str, object] = {
        "event": "started",
        "incident_id": "01JABCDEF0123456789ABCDEFG",
        "seq": 7,
        "site": "north",
        "edge_id": "edge-01",
        "camera": "cam-01",
        "zone": "gate-north",
        "rule": "illegal_parking",
        "classes": ["car"],
        "objects": [
            {
                "track_id": 3,
                "class_name": "car",
                "confidence": 0.8,
                "box": {"x1": 0.1, "y1": 0.2, "x2": 0.3, "y2": 0.4},
            }
        ],
        "confidence": 0.8,
        "media_time": 61.5,
        "started_media_time": 61.5,
        "dwell_s": 60.0,
        "wall_time": datetime(2026, 11, 25, 8, 0, tzinfo=UTC).isoformat(),
    }
    event.update(overrides)
    return event


def test_incident_round_trips_through_json() -> None:
    event = IncidentEvent.model_validate(make_event())
    again = IncidentEvent.model_validate_json(event.model_dump_json())
    assert again == event
    assert again.schema_version == SCHEMA_VERSION


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"event": "restarted"}, "event"),
        ({"rule": "speeding"}, "rule"),
        ({"edge_id": "edge/01"}, "edge_id"),
        ({"seq": -1}, "seq"),
        ({"schema_version": 99}, "schema_version"),
        ({"surprise": 1}, "surprise"),
        ({"confidence": 1.5}, "confidence"),
    ],
)
def test_incident_refuses_bad_fields(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        IncidentEvent.model_validate(make_event(**overrides))
    assert field in {str(loc[0]) for loc in (e["loc"] for e in info.value.errors())}


def test_topics_and_parse_agree() -> None:
    t = Topics("north", "edge-01")
    assert parse_topic(t.incidents) == {"site": "north", "edge_id": "edge-01", "channel": "incidents"}
    assert parse_topic(t.status)["channel"] == "status"  # type: ignore[index]
    assert parse_topic(t.camera_status("cam-9")) == {
        "site": "north",
        "edge_id": "edge-01",
        "channel": "camera_status",
        "camera": "cam-9",
    }
    assert parse_topic("other/v1/north/edge-01/incidents") is None
    assert parse_topic("gridwarden/v1/north/edge-01/incidents/extra") is None


def test_edge_status_requires_aware_fields() -> None:
    status = EdgeStatus(edge_id="edge-01", site="north", online=False, wall_time=datetime.now(UTC))
    assert json.loads(status.model_dump_json())["online"] is False


def test_exported_schemas_in_repo_are_current(tmp_path: Path) -> None:
    """schemas/ is what integrators read; it must match the code (regenerate with
    `python -m gridwarden.contract`)."""
    for fresh in export_json_schemas(tmp_path):
        committed = REPO / "schemas" / fresh.name
        assert committed.exists(), f"{committed} missing: run python -m gridwarden.contract"
        assert json.loads(committed.read_text()) == json.loads(fresh.read_text()), (
            f"{committed.name} is stale"
        )


def test_every_wire_message_is_in_the_contract_with_its_schema() -> None:
    """Everything that crosses MQTT is a contract message with an exported schema, and no other
    module defines a message of its own (a ``schema_version`` field marks one)."""
    from gridwarden import contract

    messages = {
        name
        for name, obj in vars(contract).items()
        if isinstance(obj, type) and issubclass(obj, contract._Message) and obj is not contract._Message
    }
    assert messages == set(contract.MESSAGE_MODELS)
    assert {p.name for p in (REPO / "schemas").glob("*.schema.json")} == {
        f"{name}.schema.json" for name in messages
    }
    elsewhere = [
        str(path.relative_to(REPO))
        for path in (REPO / "gridwarden").rglob("*.py")
        if path.name != "contract.py" and "schema_version: Literal" in path.read_text()
    ]
    assert elsewhere == []


@pytest.mark.parametrize(
    "module",
    [
        "gridwarden.edge.transport.hub_commands",
        "gridwarden.mqtt",
        "gridwarden.hub.settings",
        "gridwarden.geometry",
        "gridwarden.backoff",
    ],
)
def test_docstring_examples_of_the_shared_plumbing(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
