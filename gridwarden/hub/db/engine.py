"""Engine, sessions and programmatic migrations for the hub's database.

One :class:`Database` object per process owns the SQLAlchemy engine. The URL picks the backend:

* ``sqlite:///var/hub.db`` — the embedded default. Every connection gets WAL (readers never block
  the writer), ``busy_timeout`` (a second process waits instead of failing) and foreign keys on
  (SQLite leaves them off by default). Write transactions start with ``BEGIN IMMEDIATE``: a deferred
  transaction that reads and then writes can fail at once with ``SQLITE_BUSY`` when another process
  wrote in between, and ``busy_timeout`` does not help in that case.
* ``postgresql+psycopg://postgres@127.0.0.1:5432/gridwarden`` — production. Row locks
  (``SELECT ... FOR UPDATE``) serialise concurrent writers on the same incident or case.

:func:`upgrade_database` runs the Alembic migrations shipped inside the package, so a fresh
install or an upgrade needs no separate tool: the hub calls it at start.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

PACKAGE_DIR = Path(__file__).resolve().parent
ALEMBIC_INI = PACKAGE_DIR / "alembic.ini"
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Arbitrary constant: the key of the PostgreSQL advisory lock that serialises migrations.
_MIGRATION_LOCK_KEY = 0x6777_6875_6230


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # FULL: a commit survives a power cut too. The hub acknowledges MQTT messages after the
        # commit, so a commit that NORMAL could lose on power loss would be a message lost for good.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get("gw_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")


def create_hub_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine configured for the hub's needs on either backend."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        # No pre-ping: it costs a round trip per transaction, and a connection that died with the
        # server fails the transaction, which the callers retry (the pool then drops it).
        return create_engine(url, echo=echo, pool_size=5, max_overflow=5)
    raise ValueError(
        f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: use sqlite or postgresql"
    )


class Database:
    """The hub's database handle: an engine plus session factories.

    >>> db = Database("sqlite:///var/hub.db")        # doctest: +SKIP
    >>> with db.write_session() as s, s.begin(): ...  # doctest: +SKIP
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = create_hub_engine(url, echo=echo)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.engine.execution_options(gw_write=True), expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        """A session for reads (on SQLite a deferred transaction that never blocks the writer)."""
        return self._read()

    def write_session(self) -> Session:
        """A session whose transactions take the write lock up front on SQLite."""
        return self._write()

    def dispose(self) -> None:
        self.engine.dispose()

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Database:
        """Migrate the schema to the newest revision (unless told not to) and return a handle."""
        if migrate:
            upgrade_database(url)
        return cls(url)


def alembic_config(url: str) -> Config:
    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation treats '%' specially; URL-encoded passwords contain it.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@contextlib.contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    """Serialise migrations when several hub processes start at once."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            yield
            return
        lock_path = Path(parsed.database).with_suffix(".migrate.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    engine = create_engine(url, poolclass=None)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK_KEY})
                conn.commit()
    finally:
        engine.dispose()


def upgrade_database(url: str, revision: str = "head") -> None:
    """Bring the schema at ``url`` to ``revision`` (default: newest). Safe to call on every start."""
    with _migration_lock(url):
        command.upgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    """The Alembic revision the database is at, or ``None`` if it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    engine = create_hub_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
