"""Rule types: one table from a rule's ``type`` to its configuration model and the rule it builds.

Adding a rule type means one entry here (plus its config model in :mod:`gridwarden.edge.config`
and its class): the camera analytics build rules from this table, the hub's
``GET /api/v1/rule-types`` serves it to the console (types, fields, defaults, whether the rule
needs the detector), and a test checks that the contract's ``RuleType``, the configuration's
union and this table name the same types.

>>> sorted(RULE_TYPES)
['illegal_parking', 'occupied_space', 'static_object']
>>> RULE_TYPES["static_object"].needs_detector
False
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from gridwarden.edge.analytics.rules.occupancy import OccupiedSpaceRule
from gridwarden.edge.analytics.rules.parking import IllegalParkingRule
from gridwarden.edge.config import (
    IllegalParkingRuleConfig,
    OccupiedSpaceRuleConfig,
    StaticObjectRuleConfig,
)

DwellRuleClass = IllegalParkingRule | OccupiedSpaceRule


@dataclass(frozen=True)
class RuleBuild:
    """What a builder needs besides the rule's own configuration.

    ``common``: the parameters every dwell rule takes (zone, camera, dwell_s, schedule...);
    ``class_ids``: resolves the rule's class names against the detector's classes;
    ``static_class_id``: the class id the static-foreground model reports its regions as."""

    common: dict[str, Any]
    class_ids: Callable[[list[str]], set[int] | None]
    static_class_id: int


@dataclass(frozen=True)
class RuleKind:
    """One rule type. ``needs_detector``: it counts detected objects of its classes (False: the
    class-agnostic static-foreground model feeds it). ``build``: the rule for one zone."""

    rule_type: str
    config: type[BaseModel]
    needs_detector: bool
    build: Callable[[Any, RuleBuild], DwellRuleClass]
    summary: str


def _illegal_parking(rc: IllegalParkingRuleConfig, b: RuleBuild) -> DwellRuleClass:
    return IllegalParkingRule(class_ids=b.class_ids(rc.classes), **b.common)


def _occupied_space(rc: OccupiedSpaceRuleConfig, b: RuleBuild) -> DwellRuleClass:
    return OccupiedSpaceRule(class_ids=b.class_ids(rc.classes), coverage=rc.coverage, **b.common)


def _static_object(rc: StaticObjectRuleConfig, b: RuleBuild) -> DwellRuleClass:
    # The static-foreground model already waited min_static_s: no extra settling time.
    # Dwell counts from arrival: the model reports each region's age (backdate).
    rule = OccupiedSpaceRule(
        class_ids={b.static_class_id}, coverage=rc.coverage, stationary_s=0.0, backdate=True, **b.common
    )
    rule.rule_type = "static_object"
    return rule


RULE_TYPES: dict[str, RuleKind] = {
    kind.rule_type: kind
    for kind in (
        RuleKind(
            "illegal_parking",
            IllegalParkingRuleConfig,
            True,
            _illegal_parking,
            "A vehicle of the given classes stays in the zone longer than dwell_s.",
        ),
        RuleKind(
            "occupied_space",
            OccupiedSpaceRuleConfig,
            True,
            _occupied_space,
            "Objects of the given classes cover at least 'coverage' of the zone for dwell_s.",
        ),
        RuleKind(
            "static_object",
            StaticObjectRuleConfig,
            False,
            _static_object,
            "Anything that became part of the scene (a stall, a pile of goods) covers the zone for dwell_s.",
        ),
    )
}


# A new rule in the zone editor starts with this dwell (dwell_s has no default: every rule states it).
SUGGESTED_DWELL_S = 60.0


def new_rule(kind: RuleKind) -> dict[str, Any]:
    """What the console's editor puts in a new rule of this type: its classes, a dwell, and the
    fields the type itself declares (coverage...) at their defaults; the rest stays implicit."""
    own = [
        n
        for n in kind.config.__annotations__
        if n != "type" and not kind.config.model_fields[n].is_required()
    ]
    rule: dict[str, Any] = {
        "classes": kind.config.model_fields["classes"].get_default(call_default_factory=True),
        "dwell_s": SUGGESTED_DWELL_S,
    }
    for name in own:
        rule.setdefault(name, kind.config.model_fields[name].get_default(call_default_factory=True))
    return rule


def describe_rule_types() -> list[dict[str, Any]]:
    """The table for clients (the console's zone editor): per type its summary, whether it needs
    the detector, every field with its JSON schema, default and description, and what a new
    rule of the type starts with."""
    out = []
    for kind in RULE_TYPES.values():
        schema = kind.config.model_json_schema()
        fields = []
        for name, prop in schema.get("properties", {}).items():
            if name == "type":
                continue
            info = kind.config.model_fields[name]
            default = info.get_default(call_default_factory=True)
            fields.append(
                {
                    "name": name,
                    "required": info.is_required(),
                    "default": None if info.is_required() else default,
                    "description": info.description or prop.get("description"),
                    "schema": prop,
                }
            )
        out.append(
            {
                "type": kind.rule_type,
                "summary": kind.summary,
                "needs_detector": kind.needs_detector,
                "fields": fields,
                "defaults": {f["name"]: f["default"] for f in fields if f["default"] is not None},
                "new_rule": new_rule(kind),
            }
        )
    return out
