"""Rule types come from one registry: the contract, the configuration, the analytics and the
console's API all name the same types, and a rule's defaults have one source."""

from __future__ import annotations

import inspect
import typing

from pydantic import TypeAdapter

from gridwarden.contract import RuleType
from gridwarden.edge.analytics.rules import defaults
from gridwarden.edge.analytics.rules.occupancy import OccupiedSpaceRule
from gridwarden.edge.analytics.rules.parking import IllegalParkingRule
from gridwarden.edge.analytics.rules.registry import RULE_TYPES, describe_rule_types
from gridwarden.edge.config import RuleConfig, ZoneConfig


def test_contract_config_and_registry_name_the_same_rule_types() -> None:
    union = typing.get_args(typing.get_args(RuleConfig)[0])
    config_types = {typing.get_args(m.model_fields["type"].annotation)[0] for m in union}
    assert set(typing.get_args(RuleType)) == config_types == set(RULE_TYPES)
    assert {kind.config for kind in RULE_TYPES.values()} == set(union)


def test_every_new_rule_the_console_offers_is_a_valid_rule() -> None:
    adapter = TypeAdapter(RuleConfig)
    for described in describe_rule_types():
        rule = adapter.validate_python({"type": described["type"], **described["new_rule"]})
        assert rule.type == described["type"]
        names = {f["name"] for f in described["fields"]}
        assert set(described["new_rule"]) <= names and "type" not in names


def test_a_rule_built_in_code_has_the_defaults_of_a_rule_written_in_a_file() -> None:
    """end_grace_s was 5 s in the configuration and 3 s in the rule classes."""
    zone = ZoneConfig.model_validate(
        {
            "id": "kerb",
            "polygon": [[0, 0], [1, 0], [1, 1]],
            "rules": [{"type": "illegal_parking", "dwell_s": 30}],
        }
    )
    written = zone.rules[0]
    for cls in (IllegalParkingRule, OccupiedSpaceRule):
        params = inspect.signature(cls.__init__).parameters
        for name in ("end_grace_s", "stationary_tolerance", "update_interval_s", "occlusion_memory_s"):
            assert params[name].default == getattr(written, name), (cls.__name__, name)
    assert written.end_grace_s == defaults.END_GRACE_S
