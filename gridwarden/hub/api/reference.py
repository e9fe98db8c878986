"""Reference data the console reads instead of copying: rule types and the case life cycle.

``GET /api/v1/rule-types`` serves the edge's rule registry
(:func:`gridwarden.edge.analytics.rules.registry.describe_rule_types`): each type's fields with their
defaults, whether it needs the detector, and what a new rule of the type starts with.
``GET /api/v1/case-lifecycle`` serves the states and allowed transitions of
:data:`gridwarden.hub.cases.TRANSITIONS`. Any logged-in user may read both.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from gridwarden.edge.analytics.rules.registry import describe_rule_types
from gridwarden.hub.api.deps import current_principal
from gridwarden.hub.auth import Principal
from gridwarden.hub.cases import STATES, TRANSITIONS

router = APIRouter(prefix="/api/v1", tags=["reference"])
Anyone = Annotated[Principal, Depends(current_principal)]


class RuleType(BaseModel):
    type: str
    summary: str
    needs_detector: bool
    fields: list[dict[str, Any]]
    defaults: dict[str, Any]
    new_rule: dict[str, Any]


class CaseLifecycle(BaseModel):
    states: list[str]
    transitions: dict[str, list[str]]


@router.get("/rule-types", response_model=list[RuleType], summary="Rule types, their fields and defaults")
def rule_types(_: Anyone) -> list[dict[str, Any]]:
    return describe_rule_types()


@router.get("/case-lifecycle", response_model=CaseLifecycle, summary="Case states and allowed transitions")
def case_lifecycle(_: Anyone) -> CaseLifecycle:
    return CaseLifecycle(states=list(STATES), transitions={s: list(t) for s, t in TRANSITIONS.items()})
