"""Every edge's configuration, versioned: who changed what, when, and the way back.

The hub keeps each edge's configuration as the edge's own YAML text (the file format
:mod:`gridwarden.edge.config` reads), one row per version in ``edge_config_versions``. Why text
and not parsed JSON: the operator's comments and layout survive, the diff between two versions
is a readable unified diff, and the edge validates exactly the bytes the hub validated.

Nothing is ever updated in place except ``published_at``: a rollback is a NEW version carrying
an earlier version's text (``rollback_of``), so the history shows that it happened and who did it.

Validation reuses :func:`gridwarden.edge.config.load_edge_config_text` (the edge's own loader,
so hub and edge can never disagree on what is valid) and adds what only the hub can check
before sending: that the file is for this edge, and that every class a rule names exists. The
hub usually cannot read the edge's model file, so class names are checked against the COCO-80
labels and the class groups (built-in plus the file's own ``class_groups``) unless the
configuration names a labels file the hub can read. Every problem is a ``file:line: field:
message`` string, as for a file on the edge.

Example::

    store = ConfigStore(db)
    v = store.put("edge-01", yaml_text, author="alice", comment="new kerb zone")
    store.rollback("edge-01", 1, author="alice", comment="kerb zone was wrong")
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from gridwarden.contract import utcnow
from gridwarden.edge.analytics.detector.classes import (
    COCO80,
    DEFAULT_CLASS_GROUPS,
    load_labels_file,
    resolve_classes,
)
from gridwarden.edge.config import EdgeConfig, load_edge_config_text
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import EdgeConfigVersion
from gridwarden.yamlconfig import ConfigError, ConfigProblem, PathKey, format_field, parse_yaml_with_lines

# A retained MQTT message must stay under the hub's own payload limit (256 kB) with its envelope.
MAX_CONFIG_BYTES = 200 * 1024
# Two writers racing for the same next version number: the loser retries this often.
_VERSION_RACE_RETRIES = 5


class UnknownConfigVersion(LookupError):
    """The edge has no configuration, or not the version asked for."""


@dataclass(frozen=True)
class ConfigVersion:
    """One stored version (``yaml`` is the full text)."""

    edge_id: str
    version: int
    site: str
    yaml: str
    sha256: str
    author: str
    comment: str
    rollback_of: int | None
    created_at: datetime
    published_at: datetime | None

    @classmethod
    def from_row(cls, row: EdgeConfigVersion) -> ConfigVersion:
        return cls(
            edge_id=row.edge_id,
            version=row.version,
            site=row.site,
            yaml=row.yaml,
            sha256=row.sha256,
            author=row.author,
            comment=row.comment,
            rollback_of=row.rollback_of,
            created_at=row.created_at,
            published_at=row.published_at,
        )


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def unified_diff(old: str, new: str, *, old_name: str, new_name: str) -> str:
    """A unified diff of two configuration texts ('' when they are equal)."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=old_name, tofile=new_name
        )
    )


def validate_edge_config(edge_id: str, text: str, *, source: str | None = None) -> EdgeConfig:
    """Validate configuration text for ``edge_id``; raise :class:`ConfigError` listing every problem.

    Beyond the edge's own validation: the file's ``edge_id`` must be this edge, and every class
    or group a rule names must be known (see the module docstring).
    """
    source = source or f"{edge_id}.yaml"
    if len(text.encode("utf-8")) > MAX_CONFIG_BYTES:
        raise ConfigError(
            [ConfigProblem(source, None, "", f"configuration is larger than {MAX_CONFIG_BYTES} bytes")]
        )
    config = load_edge_config_text(text, source=source)
    _, lines = parse_yaml_with_lines(text, source)
    problems: list[ConfigProblem] = []
    if config.edge_id != edge_id:
        problems.append(
            ConfigProblem(
                source,
                lines.get(("edge_id",)),
                "edge_id",
                f"this file is for edge {config.edge_id!r}, not {edge_id!r}",
            )
        )
    problems += _class_problems(config, lines, source)
    if problems:
        raise ConfigError(problems)
    return config


def _class_names_for(config: EdgeConfig) -> list[str]:
    """The labels the edge's model will use, as far as the hub can know them."""
    if config.model is not None and config.model.labels:
        path = Path(config.model.labels)
        if path.is_absolute() and path.is_file():
            try:
                return load_labels_file(path)
            except (OSError, ValueError):
                pass  # unreadable here: fall back to COCO, the edge checks its own file at start
    return list(COCO80)


def _class_problems(config: EdgeConfig, lines: dict[PathKey, int], source: str) -> list[ConfigProblem]:
    names = _class_names_for(config)
    groups = {**DEFAULT_CLASS_GROUPS, **config.class_groups}
    problems = []
    for ci, camera in enumerate(config.cameras):
        for zi, zone in enumerate(camera.zones):
            for ri, rule in enumerate(zone.rules):
                if rule.type == "static_object":
                    continue  # class-agnostic: its classes are never resolved against the model
                for ki, name in enumerate(rule.classes):
                    try:
                        resolve_classes([name], names, groups)
                    except ValueError as exc:
                        loc: PathKey = ("cameras", ci, "zones", zi, "rules", ri, "classes", ki)
                        line = lines.get(loc) or lines.get(loc[:-1])
                        problems.append(ConfigProblem(source, line, format_field(loc), str(exc)))
    return problems


class ConfigStore:
    """Versioned configuration of every edge, in the hub's database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def put(
        self, edge_id: str, text: str, *, author: str, comment: str = "", rollback_of: int | None = None
    ) -> ConfigVersion:
        """Validate and store ``text`` as the edge's next version; raise :class:`ConfigError`
        (nothing stored) when it is invalid."""
        config = validate_edge_config(edge_id, text)
        for attempt in range(_VERSION_RACE_RETRIES):
            try:
                with self.db.write_session() as session, session.begin():
                    latest = session.scalar(
                        select(func.max(EdgeConfigVersion.version)).where(
                            EdgeConfigVersion.edge_id == edge_id
                        )
                    )
                    row = EdgeConfigVersion(
                        edge_id=edge_id,
                        version=(latest or 0) + 1,
                        site=config.site,
                        yaml=text,
                        sha256=sha256_text(text),
                        author=author,
                        comment=comment,
                        rollback_of=rollback_of,
                        created_at=utcnow(),
                        published_at=None,
                    )
                    session.add(row)
                    session.flush()
                    return ConfigVersion.from_row(row)
            except IntegrityError:
                # Another hub process took this version number first (PostgreSQL, concurrent PUTs).
                if attempt == _VERSION_RACE_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def register_running(self, edge_id: str, text: str, *, author: str) -> ConfigVersion | None:
        """Store ``text`` (what the edge runs now, sent by the edge when it connects) as version 1,
        but only when the hub has no version of this edge yet; ``None`` when it has one (the hub's
        history wins: an edge never overwrites it). Raises :class:`ConfigError` when invalid."""
        config = validate_edge_config(edge_id, text)
        try:
            with self.db.write_session() as session, session.begin():
                existing = session.scalar(
                    select(func.count())
                    .select_from(EdgeConfigVersion)
                    .where(EdgeConfigVersion.edge_id == edge_id)
                )
                if existing:
                    return None
                row = EdgeConfigVersion(
                    edge_id=edge_id,
                    version=1,
                    site=config.site,
                    yaml=text,
                    sha256=sha256_text(text),
                    author=author,
                    comment="registered by the edge: the configuration it was running",
                    rollback_of=None,
                    created_at=utcnow(),
                    published_at=None,
                )
                session.add(row)
                session.flush()
                return ConfigVersion.from_row(row)
        except IntegrityError:
            return None  # someone stored version 1 at the same moment: theirs stands

    def rollback(self, edge_id: str, version: int, *, author: str, comment: str = "") -> ConfigVersion:
        """Store the text of ``version`` as a new version (re-validated: rules may have tightened)."""
        old = self.get(edge_id, version)
        return self.put(
            edge_id,
            old.yaml,
            author=author,
            comment=comment or f"rollback to version {version}",
            rollback_of=version,
        )

    def current(self, edge_id: str) -> ConfigVersion:
        with self.db.session() as session:
            row = session.scalars(
                select(EdgeConfigVersion)
                .where(EdgeConfigVersion.edge_id == edge_id)
                .order_by(EdgeConfigVersion.version.desc())
                .limit(1)
            ).first()
            if row is None:
                raise UnknownConfigVersion(f"edge {edge_id!r} has no configuration on this hub yet")
            return ConfigVersion.from_row(row)

    def get(self, edge_id: str, version: int) -> ConfigVersion:
        with self.db.session() as session:
            row = session.scalars(
                select(EdgeConfigVersion).where(
                    EdgeConfigVersion.edge_id == edge_id, EdgeConfigVersion.version == version
                )
            ).first()
            if row is None:
                raise UnknownConfigVersion(f"edge {edge_id!r} has no configuration version {version}")
            return ConfigVersion.from_row(row)

    def history(self, edge_id: str) -> list[ConfigVersion]:
        """Every version of the edge's configuration, newest first."""
        with self.db.session() as session:
            rows = session.scalars(
                select(EdgeConfigVersion)
                .where(EdgeConfigVersion.edge_id == edge_id)
                .order_by(EdgeConfigVersion.version.desc())
            ).all()
            return [ConfigVersion.from_row(r) for r in rows]

    def diff(self, edge_id: str, version: int) -> str:
        """Unified diff of ``version`` against the version before it (against nothing for v1)."""
        new = self.get(edge_id, version)
        old_text = self.get(edge_id, version - 1).yaml if version > 1 else ""
        return unified_diff(old_text, new.yaml, old_name=f"v{version - 1}", new_name=f"v{version}")

    def mark_published(self, edge_id: str, version: int) -> None:
        with self.db.write_session() as session, session.begin():
            row = session.scalars(
                select(EdgeConfigVersion).where(
                    EdgeConfigVersion.edge_id == edge_id, EdgeConfigVersion.version == version
                )
            ).first()
            if row is not None:
                row.published_at = utcnow()
