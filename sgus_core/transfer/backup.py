"""Backup and restore of the labels store in a portable format that works for both engines.

A backup is one gzip-compressed JSON-lines file: a header line (format, schema revision, date,
row counts), then one line per row, table by table in foreign-key order, bytes as base64. It is
read in one consistent snapshot (one transaction), so a backup taken while raters save is whole.
Restore goes into an empty store only: it never mixes with or replaces labels already there.
Text that today's rules refuse (a NUL character, or longer than its column: SQLite kept such
values before the rules) is made to fit on restore, each change an audit entry with the original
value, so a backup from either engine restores into either.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import zlib
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import SQLAlchemyError

from sgus_core.errors import StoreError
from sgus_core.store import LabelStore, current_revision
from sgus_core.store.base import StoreBase
from sgus_core.store.schema import TextRules, fit_text, metadata, text_problem

FORMAT = "sgus-backup/1"


NOT_BACKED_UP = frozenset({"sign_ins"})  # open browser sign-ins: a restore starts with none


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, datetime | date):
        return {"$dt": value.isoformat()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        if "$b64" in value:
            return base64.b64decode(value["$b64"])
        if "$dt" in value:
            moment = datetime.fromisoformat(value["$dt"])
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return value


def backup_store(
    store: LabelStore, out: Path, *, progress: Callable[[int, int], None] | None = None
) -> dict[str, int]:
    """Write every table of the store to ``out``; returns the row count per table.

    The file is written to a temporary name and renamed, so a crash never leaves half a backup
    under the final name.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    tables = [t for t in metadata.sorted_tables if t.name not in NOT_BACKED_UP]
    counts: dict[str, int] = {}
    with store.engine.connect() as conn, conn.begin():
        if store.url.startswith("postgresql"):
            conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        for table in tables:
            counts[table.name] = conn.execute(select(func.count()).select_from(table)).scalar_one()
        header = {
            "format": FORMAT,
            "revision": current_revision(store.engine),
            "created_at": datetime.now(UTC).isoformat(),
            "counts": counts,
        }
        with gzip.open(tmp, "wt", encoding="utf-8") as handle:
            handle.write(json.dumps(header) + "\n")
            for done, table in enumerate(tables, start=1):
                order = list(table.primary_key.columns)
                for row in conn.execute(select(table).order_by(*order)):
                    record = {k: _encode(v) for k, v in row._mapping.items()}
                    handle.write(json.dumps({"t": table.name, "r": record}) + "\n")
                if progress:
                    progress(done, len(tables))
    os.replace(tmp, out)
    return counts


def restore_store(
    store: LabelStore, backup: Path, *, progress: Callable[[int, int], None] | None = None
) -> dict[str, int]:
    """Load a backup into an empty store (same schema revision); returns rows restored per table.

    Raises:
        StoreError: the file is not an SGUS backup, its revision differs, or the store is not
            empty (restore never mixes with existing labels).
    """
    try:
        handle = gzip.open(Path(backup), "rt", encoding="utf-8")  # noqa: SIM115 - closed below
        header = json.loads(handle.readline())
    except (OSError, ValueError, EOFError) as exc:
        raise StoreError(f"{backup} is not a readable SGUS backup: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise StoreError(f"{backup} is not an SGUS backup (format {header.get('format')!r}).")
    revision = current_revision(store.engine)
    if header.get("revision") != revision:
        raise StoreError(
            f"The backup is of schema revision {header.get('revision')}, this store is at "
            f"{revision}; restore with the release that wrote it, then upgrade."
        )
    if any(store.counts().values()):
        raise StoreError(
            "The target store is not empty; point SGUS_DB_URL at an empty database to restore."
        )
    by_name = {t.name: t for t in metadata.sorted_tables if t.name not in NOT_BACKED_UP}
    restored = dict.fromkeys(by_name, 0)
    try:
        _restore_rows(store, handle, header, by_name, restored, progress)
    except StoreError:
        raise
    except (OSError, EOFError, ValueError, KeyError, TypeError, zlib.error, SQLAlchemyError) as exc:
        raise StoreError(
            f"{backup} is damaged and was not restored ({type(exc).__name__}: "
            f"{_first_line(exc)}); nothing was written."
        ) from exc
    return restored


def _restore_rows(
    store: LabelStore,
    handle: Any,
    header: dict[str, Any],
    by_name: dict[str, Any],
    restored: dict[str, int],
    progress: Callable[[int, int], None] | None,
) -> None:
    """Insert every row of an open backup in one transaction (any failure rolls it all back)."""
    total = sum(header["counts"].values()) or 1
    done = 0
    fitted: list[dict[str, Any]] = []
    with handle, store.transaction() as conn:
        pending: list[dict[str, Any]] = []
        current: str | None = None  # the table of the rows in ``pending``
        for line in handle:
            item = json.loads(line)
            table_name: str = item["t"]
            if table_name != current or len(pending) >= 500:
                # the file is in foreign-key order: flush before the next table
                if pending and current is not None:
                    conn.execute(insert(by_name[current]), pending)
                pending, current = [], table_name
            record = {k: _decode(v) for k, v in item["r"].items()}
            pending.append(_fit_row(by_name[table_name], record, fitted))
            restored[table_name] += 1
            done += 1
            if progress and done % 500 == 0:
                progress(done, total)
        if pending and current is not None:
            conn.execute(insert(by_name[current]), pending)
        if restored != header["counts"]:  # raising here rolls the whole restore back
            raise StoreError(
                f"The backup is incomplete: expected {header['counts']}, got {restored}."
            )
        if store.url.startswith("postgresql"):
            for table in by_name.values():
                if "id" in table.columns:
                    conn.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                            f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"
                        )
                    )
        for change in fitted:  # after the ids are set: each change is an audit row of its own
            StoreBase._audit(conn, "restore", "fit", change.pop("table"), change.pop("id"), change)


def _fit_row(table: Any, record: dict[str, Any], fitted: list[dict[str, Any]]) -> dict[str, Any]:
    """A backed-up row with each text value that breaks today's text rules (a NUL character, or
    longer than its column; written by SQLite before the rules held) made to fit, and the change
    with the original value noted in ``fitted``, so that any backup restores into either
    engine and nothing is lost without a trace."""
    for column in table.columns:
        value = record.get(column.name)
        if not isinstance(value, str) or not isinstance(column.type, TextRules):
            continue
        problem = text_problem(value, column.type.max_length)
        if problem is None:
            continue
        record[column.name] = fit_text(value, column.type.max_length)
        fitted.append(
            {"table": table.name, "id": record.get("id"), "column": column.name,
             "problem": problem, "original": value}
        )  # fmt: skip
    return record


def _first_line(exc: BaseException) -> str:
    text_ = str(exc).strip()
    return text_.splitlines()[0][:200] if text_ else "no detail"
