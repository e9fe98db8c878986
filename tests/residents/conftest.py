"""Fixtures for the residents/city tests: the hub API tests' app, users and seeded cases."""

from __future__ import annotations

from tests.hub.conftest import db, db_url, pg_database_url, sqlite_template  # noqa: F401 - fixtures
from tests.hub_api.conftest import app_client, seeded, tokens  # noqa: F401 - fixtures
