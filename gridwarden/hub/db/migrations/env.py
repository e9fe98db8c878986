"""Alembic environment for the hub: online migrations only, on the hub's own engine setup.

Logging is left as the host process configured it (the hub calls migrations programmatically, so
Alembic must not reset the application's log handlers).
"""

from __future__ import annotations

from alembic import context

from gridwarden.hub.db.engine import create_hub_engine
from gridwarden.hub.db.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("sqlalchemy.url is not set: call gridwarden.hub.db.upgrade_database(url)")
    engine = create_hub_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; run upgrade_database(url)")
run_migrations_online()
