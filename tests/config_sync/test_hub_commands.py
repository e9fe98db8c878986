"""The edge's one dispatcher of hub -> edge messages: every channel is checked the same way."""

from __future__ import annotations

import json

from gridwarden.contract import EdgeConfigMessage, ReplayRequest, SnapshotRequest, utcnow
from gridwarden.edge.transport.hub_commands import HubCommands, Refusal


def _commands() -> tuple[HubCommands, list[object], list[Refusal]]:
    commands = HubCommands("north", "edge-01")
    handled: list[object] = []
    refused: list[Refusal] = []
    for channel, model in (
        ("config", EdgeConfigMessage),
        ("replay", ReplayRequest),
        ("snapshot_request", SnapshotRequest),
    ):
        commands.on(channel, model, handled.append, on_refused=refused.append)  # type: ignore[arg-type]
    return commands, handled, refused


def test_each_channel_reaches_its_handler_with_its_model() -> None:
    commands, handled, refused = _commands()
    replay = ReplayRequest(edge_id="edge-01", from_seq=3, to_seq=9, wall_time=utcnow())
    snap = SnapshotRequest(edge_id="edge-01", camera="cam-1", wall_time=utcnow())
    commands.dispatch(commands.topics.replay, replay.model_dump_json().encode())
    commands.dispatch(commands.topics.snapshot_request, snap.model_dump_json().encode())
    assert handled == [replay, snap] and refused == []
    assert sorted(t for t, _ in commands.subscriptions()) == sorted(
        [commands.topics.config, commands.topics.replay, commands.topics.snapshot_request]
    )


def test_bad_messages_are_refused_with_a_reason_and_never_handled() -> None:
    commands, handled, refused = _commands()
    other_edge = ReplayRequest(edge_id="edge-02", from_seq=1, to_seq=2, wall_time=utcnow())
    cases = [
        (commands.topics.replay, b"not json", "not JSON"),
        (commands.topics.replay, b'{"type": "replay_request"}', "not a ReplayRequest"),
        (commands.topics.replay, other_edge.model_dump_json().encode(), "message is for edge 'edge-02'"),
        (commands.topics.snapshot_request, b"{" + b" " * 300_000 + b"}", "larger than"),
        (
            commands.topics.config,
            json.dumps({"version": 4, "edge_id": "edge-01"}).encode(),
            "not a EdgeConfig",
        ),
        (
            "gridwarden/v1/north/edge-02/replay",
            other_edge.model_dump_json().encode(),
            "not a topic of this edge",
        ),
    ]
    for topic, payload, reason in cases:
        result = commands.dispatch(topic, payload)
        assert isinstance(result, Refusal) and result.reason.startswith(reason), (reason, result)
    assert handled == []
    assert [r.version for r in refused if r.channel == "config"] == [4]  # the version is kept when readable
    assert sum(commands.refused.values()) == len(cases)
