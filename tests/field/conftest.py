"""Fixtures for places, officers and dispatch: the hub API tests' app, users and ingest helpers."""

from tests.hub.conftest import db, db_url, pg_database_url, sqlite_template  # noqa: F401 - fixtures
from tests.hub_api.conftest import app_client, tokens  # noqa: F401 - fixtures
