"""The database engine of the labels store: one SQLAlchemy URL, migrations, write transactions.

SQLite (the default) runs in WAL mode and takes its write lock at the start of a write
transaction (``BEGIN IMMEDIATE``), so concurrent savers wait instead of failing; PostgreSQL
migrates under an advisory lock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, ExceptionContext, create_engine, event
from sqlalchemy.pool import ConnectionPoolEntry

from sgus_core.errors import SgusError, StoreError
from sgus_core.store.schema import WRITING

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
WRITE_OPTION = "sgus_write"


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    """The newest migration revision shipped with this release."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:
        raise StoreError("This release ships no schema migrations (a broken install).")
    return head


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL mode, foreign keys and a generous busy timeout.

    Raises:
        StoreError: the URL cannot be parsed or its driver is missing.
    """
    try:
        engine = _make_engine(url)
    except Exception as exc:  # sqlalchemy raises several types for bad URLs / missing drivers
        raise StoreError(f"Cannot open the labels store at {url!r}: {exc}") from exc

    @event.listens_for(engine, "handle_error")
    def _our_errors(context: ExceptionContext) -> BaseException | None:
        # A value refused by a column type's check (schema.CheckedString) reaches the caller as
        # that StoreError, not wrapped in SQLAlchemy's StatementError.
        original = context.original_exception
        return original if isinstance(original, SgusError) else None

    return engine


def _make_engine(url: str) -> Engine:
    """The engine for ``url``; SQLite gets its pragmas and its write-lock-first begin."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(
            dbapi_conn: sqlite3.Connection, _record: ConnectionPoolEntry
        ) -> None:  # pragma: no cover - trivial
            # Transactions are begun by SQLAlchemy's "begin" event below, not by pysqlite.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            # WAL lets readers (Browse pages) go on while a rater saves; NORMAL sync is
            # crash-safe in WAL mode (a power cut may lose the last commit, never corrupt).
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:  # pragma: no cover - trivial
            # A write transaction takes the write lock up front (BEGIN IMMEDIATE): a deferred
            # one that reads first and writes later can fail with SQLITE_BUSY at once when
            # another process wrote in between, without waiting for the busy timeout.
            immediate = conn.get_execution_options().get(WRITE_OPTION)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the database's write lock from its start (see ``make_engine``);
    the text it binds is checked against the column rules (``schema.TextRules``)."""
    token = WRITING.set(True)
    try:
        with engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                yield conn
    finally:
        WRITING.reset(token)


def migrate(engine: Engine) -> str:
    """Bring the schema up to the newest revision; returns that revision.

    Safe when several processes open a new store at once: the migration runs under the write
    lock (SQLite) or a transaction-scoped advisory lock (PostgreSQL), so the second one finds the
    schema already at head.
    """
    cfg = _alembic_config()
    with write_transaction(engine) as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7405202)")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return current_revision(engine) or ""


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (``None`` for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


# ---------------------------------------------------------------- the store
