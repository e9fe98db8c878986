"""An officer's state, derived from duty and open tasks, and the task life cycle.

An officer's ``state`` is not set by hand: it follows from whether they are on duty and what
their open tasks are (an open offer wins over being on scene, on scene over en route)::

    off duty                         -> off_duty
    an offer waiting for an answer   -> offered
    a task arrived at, not resolved  -> on_scene
    an accepted task                 -> en_route
    otherwise                        -> available
"""

from __future__ import annotations

from collections.abc import Iterable

OFFICER_STATES = ("available", "offered", "en_route", "on_scene", "off_duty")
TEAMS = ("patrol", "grid")
TRANSPORTS = ("foot", "ebike", "car")

TASK_STATES = ("offered", "accepted", "arrived", "resolved", "verified", "declined", "expired", "withdrawn")
# Tasks that still occupy the officer (a resolved task waits for the camera, the officer is free).
OPEN_TASK_STATES = ("offered", "accepted", "arrived")
TASK_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "offered": ("accepted", "declined", "expired", "withdrawn"),
    "accepted": ("arrived", "resolved", "withdrawn"),
    "arrived": ("resolved", "withdrawn"),
    "resolved": ("verified", "accepted", "withdrawn"),  # accepted again: rework
    "verified": (),
    "declined": (),
    "expired": (),
    "withdrawn": (),
}


def officer_state(on_duty: bool, open_task_states: Iterable[str]) -> str:
    """The officer's state from duty and the states of their open tasks.

    >>> officer_state(True, []), officer_state(True, ["accepted", "offered"]), officer_state(False, ["arrived"])
    ('available', 'offered', 'off_duty')
    """
    if not on_duty:
        return "off_duty"
    states = set(open_task_states)
    if "offered" in states:
        return "offered"
    if "arrived" in states:
        return "on_scene"
    if "accepted" in states:
        return "en_route"
    return "available"
