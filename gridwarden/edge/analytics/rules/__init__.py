"""Zone rules that turn tracks into incidents (started / updated / ended).

* :class:`IllegalParkingRule` (``illegal_parking``): one object at rest in a zone for a dwell time.
* :class:`OccupiedSpaceRule` (``occupied_space``): a zone covered by resting objects for a dwell time.
* ``static_objects`` (separate module): a class-agnostic static-foreground detector whose
  Detections can be fed to these rules.

The shared lifecycle and the position-based object memory live in :mod:`.base`.
"""

from gridwarden.edge.analytics.rules.base import (
    DwellRule,
    IncidentUpdate,
    RuleContext,
    TrackedObject,
    new_incident_id,
)
from gridwarden.edge.analytics.rules.occupancy import OccupiedSpaceRule
from gridwarden.edge.analytics.rules.parking import IllegalParkingRule
from gridwarden.edge.analytics.rules.schedule import Schedule

__all__ = [
    "DwellRule",
    "IllegalParkingRule",
    "IncidentUpdate",
    "OccupiedSpaceRule",
    "RuleContext",
    "Schedule",
    "TrackedObject",
    "new_incident_id",
]
