"""Migrations build exactly the ORM's schema, idempotently, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from gridwarden.hub.db import Database, current_revision, upgrade_database
from gridwarden.hub.db.engine import alembic_config
from gridwarden.hub.db.models import Base


def test_schema_matches_models_and_upgrade_is_idempotent(db_url: str) -> None:
    upgrade_database(db_url)  # a second run (the fixture migrated already) is a no-op
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()
    assert current_revision(db_url) == head
    db = Database(db_url)
    try:
        with db.engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert diff == []
    finally:
        db.dispose()


def test_fresh_sqlite_gets_wal_busy_timeout_and_foreign_keys(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/sub/dir/hub.db"
    db = Database.open(url)
    try:
        with db.session() as s:
            assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert s.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
            assert s.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    finally:
        db.dispose()
