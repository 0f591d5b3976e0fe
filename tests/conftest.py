"""Shared fixtures: a temporary labels store, and the store URL the suite runs against.

``SGUS_TEST_PG_URL`` (set by the test command when it has started a throw-away PostgreSQL
cluster) makes the store tests run against that server as well as SQLite.
"""

from __future__ import annotations

import os
import uuid

import pytest

from sgus_core.store import LabelStore


def _engines() -> list[str]:
    engines = ["sqlite"]
    if os.environ.get("SGUS_TEST_PG_URL"):
        engines.append("postgres")
    return engines


@pytest.fixture(params=_engines())
def store(request, tmp_path):
    """An empty, migrated labels store (SQLite file in tmp_path, or a fresh PostgreSQL database)."""
    if request.param == "sqlite":
        labels = LabelStore(f"sqlite:///{tmp_path / 'labels.db'}")
        yield labels
        labels.close()
        return
    from sqlalchemy import create_engine, text

    admin_url = os.environ["SGUS_TEST_PG_URL"]
    name = f"sgus_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    labels = LabelStore(admin_url.rsplit("/", 1)[0] + f"/{name}")
    yield labels
    labels.close()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}"'))
    admin.dispose()


@pytest.fixture
def sqlite_store(tmp_path):
    """An empty, migrated SQLite labels store in tmp_path."""
    labels = LabelStore(f"sqlite:///{tmp_path / 'labels.db'}")
    yield labels
    labels.close()
