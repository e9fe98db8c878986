"""The hub's storage: engine and sessions (:mod:`.engine`), tables (:mod:`.models`), migrations."""

from gridwarden.hub.db.engine import Database, current_revision, upgrade_database

__all__ = ["Database", "current_revision", "upgrade_database"]
