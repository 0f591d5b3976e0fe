"""The audit log of every write, and store-wide checks."""

from __future__ import annotations

from sqlalchemy import select, text

from sgus_core.store import schema as t
from sgus_core.store.base import StoreBase
from sgus_core.store.records import AuditEntry


class AuditArea(StoreBase):
    """The audit log of every write, and store-wide checks."""

    def audit_log(self, *, limit: int = 200) -> list[AuditEntry]:
        """The newest audit entries first."""
        q = select(t.audit_log).order_by(t.audit_log.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [AuditEntry(**r._mapping) for r in conn.execute(q)]

    def counts(self) -> dict[str, int]:
        """Row counts of the main tables (for status displays and tests)."""
        names = (
            "datasets",
            "images",
            "raters",
            "mask_versions",
            "grades",
            "predictions",
            "audit_log",
        )
        with self.engine.connect() as conn:
            return {n: conn.execute(text(f"SELECT COUNT(*) FROM {n}")).scalar_one() for n in names}

    def integrity_ok(self) -> bool:
        """SQLite's integrity check (always True on other engines, which check on write)."""
        if not self.url.startswith("sqlite"):
            return True
        with self.engine.connect() as conn:
            return conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
