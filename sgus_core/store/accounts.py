"""Raters' accounts: roles, password hashes, sign-in attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from sgus_core.errors import StoreError
from sgus_core.store import schema as t
from sgus_core.store.base import StoreBase, utc_now
from sgus_core.store.records import Rater
from sgus_core.vocabulary import ROLES


class AccountArea(StoreBase):
    """Raters' accounts: roles, password hashes, sign-in attempts."""

    def ensure_rater(self, name: str, *, role: str = "rater", actor: str = "system") -> Rater:
        """Return the rater called ``name``, creating them with ``role`` if missing."""
        name = name.strip()
        if not name:
            raise StoreError("A rater needs a name.")
        if role not in ROLES:
            raise StoreError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.")
        existing = self.get_rater(name)
        if existing:
            return existing
        try:
            with self.transaction() as conn:
                result = conn.execute(
                    insert(t.raters).values(name=name, role=role, created_at=utc_now())
                )
                new_id = self._inserted_id(result, "rater")
                self._audit(conn, actor, "create", "rater", new_id, {"name": name, "role": role})
        except IntegrityError:
            pass
        found = self.get_rater(name)
        if found is None:  # only if the row vanished between write and read
            raise StoreError(f"The rater {name!r} was written but cannot be read back.")
        return found

    def get_rater(self, name: str) -> Rater | None:
        """The rater called ``name`` or ``None``."""
        cols = (t.raters.c.id, t.raters.c.name, t.raters.c.role, t.raters.c.disabled)
        with self.engine.connect() as conn:
            row = conn.execute(select(*cols).where(t.raters.c.name == name)).first()
        return Rater(**row._mapping) if row else None

    def list_raters(self) -> list[Rater]:
        """Every rater, by name."""
        cols = (t.raters.c.id, t.raters.c.name, t.raters.c.role, t.raters.c.disabled)
        with self.engine.connect() as conn:
            return [Rater(**r._mapping) for r in conn.execute(select(*cols).order_by("name"))]

    def password_hash(self, name: str) -> str | None:
        """The stored password hash of an account (``None`` when it has no password)."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(t.raters.c.password_hash).where(t.raters.c.name == name)
            ).scalar()

    def update_account(
        self,
        name: str,
        *,
        password_hash: str | None = None,
        role: str | None = None,
        disabled: bool | None = None,
        actor: str = "system",
    ) -> Rater:
        """Change an account's password hash, role or disabled flag (audited; the hash never is).

        Accounts are the one thing that changes in place: a label never does.
        """
        values: dict[str, Any] = {}
        if password_hash is not None:
            values["password_hash"] = password_hash
        if role is not None:
            if role not in ROLES:
                raise StoreError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.")
            values["role"] = role
        if disabled is not None:
            values["disabled"] = disabled
        with self.transaction() as conn:
            rater_id = self._rater_id(conn, name)
            conn.execute(t.raters.update().where(t.raters.c.id == rater_id).values(**values))
            details = {k: v for k, v in values.items() if k != "password_hash"}
            if "password_hash" in values:
                details["password"] = "changed"
            self._audit(conn, actor, "update", "account", rater_id, details)
        found = self.get_rater(name)
        if found is None:  # only if the row vanished between write and read
            raise StoreError(f"The rater {name!r} was written but cannot be read back.")
        return found

    def record_login(self, name: str, success: bool) -> None:
        """Remember a sign-in attempt (for rate limiting)."""
        with self.transaction() as conn:
            conn.execute(insert(t.login_attempts).values(name=name, success=success, at=utc_now()))

    def failed_logins_since(self, name: str, since: datetime) -> int:
        """Failed sign-in attempts for ``name`` since ``since`` after its last success."""
        with self.engine.connect() as conn:
            last_ok = conn.execute(
                select(func.max(t.login_attempts.c.at)).where(
                    t.login_attempts.c.name == name, t.login_attempts.c.success.is_(True)
                )
            ).scalar()
            start = since if last_ok is None else max(since, last_ok)
            return conn.execute(
                select(func.count()).where(
                    t.login_attempts.c.name == name,
                    t.login_attempts.c.success.is_(False),
                    t.login_attempts.c.at > start,
                )
            ).scalar_one()
