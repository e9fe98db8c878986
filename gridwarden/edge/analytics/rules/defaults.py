"""Default parameters shared by every dwell rule, in one place.

The configuration (:mod:`gridwarden.edge.config`) and the rule classes both read them, so a rule
built in code behaves like the same rule written in a file with the field left out. (They used
to differ: ``end_grace_s`` was 5 s in the configuration and 3 s in the classes.)
"""

# Seconds the place must be seen empty before an incident ends.
END_GRACE_S = 5.0
# Seconds a resting object that something covers (a bus in front) keeps its place and clock.
OCCLUSION_MEMORY_S = 60.0
# How far (in box sizes) an object may move and still be "at rest".
STATIONARY_TOLERANCE = 0.15
# Seconds between "updated" events of an ongoing incident.
UPDATE_INTERVAL_S = 60.0
