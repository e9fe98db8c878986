"""The scenario file: which clip, which edge configuration, and what should happen in it.

One ``NAME.scenario.yaml`` per scenario, paths relative to the file::

    # Parked car hidden twice by a lorry (ground truth read off the frames).
    clip: parked-hidden-twice.mp4
    config: parked-hidden-twice.edge.yaml
    camera: cam-lot            # optional: the configuration's first camera otherwise
    tolerance_s: 2             # default tolerance on start and end (seconds of media time)
    zones:
      no-parking:
        - {start: 46.1, end: 90.7}
        - {start: 120.0, end: null, rule: illegal_parking, tolerance_s: 3}
      pavement: []             # nothing may happen here

``end: null`` means the incident is still open when the clip ends. Every zone of the camera is
scored: a zone left out of ``zones`` expects no incident, like one listed with ``[]``. Errors in the
file are reported with file, line and field like an edge configuration's.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gridwarden.contract import RuleType
from gridwarden.yamlconfig import load_yaml_model

SCENARIO_SUFFIX = ".scenario.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExpectedIncident(_Strict):
    """One incident that should be raised: when it starts and ends (media seconds)."""

    start: float = Field(ge=0)
    end: float | None = Field(default=None, ge=0, description="None: still open at the clip's end.")
    rule: RuleType | None = Field(default=None, description="Only an incident of this rule type matches.")
    tolerance_s: float | None = Field(default=None, gt=0, description="Overrides the scenario's tolerance.")

    @model_validator(mode="after")
    def _end_after_start(self) -> ExpectedIncident:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class Scenario(_Strict):
    """A scenario file's contents; ``path`` is set by :func:`load_scenario`."""

    clip: str = Field(min_length=1)
    config: str = Field(min_length=1)
    camera: str | None = None
    description: str = ""
    tolerance_s: float = Field(default=2.0, gt=0)
    zones: dict[str, list[ExpectedIncident]] = Field(default_factory=dict)
    path: Path = Field(default=Path("."), exclude=True)

    @property
    def name(self) -> str:
        return self.path.name.removesuffix(SCENARIO_SUFFIX)

    def clip_path(self) -> Path:
        return _relative(self.path, self.clip)

    def config_path(self) -> Path:
        return _relative(self.path, self.config)


def _relative(scenario_file: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else scenario_file.parent / p


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate one scenario file (raises ``ConfigError`` naming file, line and field)."""
    scenario = load_yaml_model(Scenario, path=path)
    scenario.path = Path(path)
    return scenario


def find_scenarios(folder: str | Path) -> list[Path]:
    """Every ``*.scenario.yaml`` under ``folder``, sorted by path."""
    return sorted(Path(folder).rglob(f"*{SCENARIO_SUFFIX}"))
