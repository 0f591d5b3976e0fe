"""Raters' accounts: roles, password hashes, sign-in attempts."""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from sgus_core.errors import StoreError
from sgus_core.store import schema as t
from sgus_core.store.base import StoreBase, utc_now
from sgus_core.store.records import Rater
from sgus_core.vocabulary import ROLES

MAX_NAME_LENGTH = 100
"""The longest account name that can sign in; sign-in attempts store at most this much of a name."""
ATTEMPT_RETENTION = timedelta(days=1)
"""Sign-in attempts older than this are deleted as new ones are recorded."""
_PRUNE_BATCH = 100  # expired attempt rows deleted per new attempt, at most (oldest first)
_PG_LOCK_NAME = 7405203  # advisory-lock class: one lock per account name (sign-in attempts)
_PG_LOCK_PRUNE = 7405204  # advisory-lock class: the one pruner of old attempts


def _name_lock_key(name: str) -> int:
    """A signed 32-bit key for ``name`` (PostgreSQL's two-integer advisory locks)."""
    key = zlib.crc32(name.encode("utf-8"))
    return key - (1 << 32) if key >= 1 << 31 else key


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
            if disabled or password_hash is not None:  # no open sign-in outlives either
                self._end_sign_ins(conn, t.sign_ins.c.rater_id == rater_id)
            details = {k: v for k, v in values.items() if k != "password_hash"}
            if "password_hash" in values:
                details["password"] = "changed"
            self._audit(conn, actor, "update", "account", rater_id, details)
        found = self.get_rater(name)
        if found is None:  # only if the row vanished between write and read
            raise StoreError(f"The rater {name!r} was written but cannot be read back.")
        return found

    # ------------------------------------------------------------ open sign-ins (serve)

    def open_sign_in(self, name: str, token_hash: str) -> None:
        """Record an open sign-in of account ``name`` under the hash of its browser token."""
        with self.transaction() as conn:
            now = utc_now()
            rater_id = self._rater_id(conn, name)
            conn.execute(insert(t.sign_ins).values(
                token_hash=token_hash, rater_id=rater_id, created_at=now, last_seen_at=now))  # fmt: skip

    def resume_sign_in(self, token_hash: str, idle_limit: timedelta) -> Rater | None:
        """The account of the open sign-in with this token hash, its last use now; ``None``
        (and the sign-in ended) when it is unknown, ended, idle longer than ``idle_limit``, or
        its account is disabled."""
        signs = t.sign_ins
        with self.transaction() as conn:
            raters = t.raters
            row = conn.execute(
                select(signs.c.id.label("sign_in"), signs.c.last_seen_at, raters.c.id,
                       raters.c.name, raters.c.role, raters.c.disabled)
                .join(raters, raters.c.id == signs.c.rater_id)
                .where(signs.c.token_hash == token_hash, signs.c.ended_at.is_(None))
            ).first()  # fmt: skip
            if row is None:
                return None
            now = utc_now()
            live = now - row.last_seen_at <= idle_limit and not row.disabled
            values = {"last_seen_at": now} if live else {"ended_at": now}
            conn.execute(update(signs).where(signs.c.id == row.sign_in).values(**values))
            return Rater(row.id, row.name, row.role, row.disabled) if live else None

    def end_sign_in(self, token_hash: str) -> None:
        """End the open sign-in with this token hash (signing out); unknown ones are ignored."""
        with self.transaction() as conn:
            self._end_sign_ins(conn, t.sign_ins.c.token_hash == token_hash)

    @staticmethod
    def _end_sign_ins(conn: Connection, which: ColumnElement[bool]) -> None:
        """End the open sign-ins ``which`` selects."""
        signs = t.sign_ins
        conn.execute(
            update(signs).where(which, signs.c.ended_at.is_(None)).values(ended_at=utc_now())
        )

    def begin_login(self, name: str, since: datetime, limit: int) -> int | None:
        """Reserve a sign-in attempt for ``name``, or refuse it when the name is locked.

        In one write transaction, serialised per name (SQLite: the store's write lock;
        PostgreSQL: a transaction-scoped advisory lock on the name), this counts the failed
        attempts since ``since`` and after the name's last success, and when fewer than
        ``limit`` records a new attempt as failed. Parallel attempts therefore each see the ones
        reserved before them, and once ``limit`` failures are on record no further attempt is
        recorded (nor should it be checked). Also deletes expired attempts (older than
        :data:`ATTEMPT_RETENTION`), a batch at a time. Names are cut to
        :data:`MAX_NAME_LENGTH` characters.

        Returns:
            The id of the new attempt (a failure until :meth:`finish_login` says otherwise), or
            ``None`` when the name already has ``limit`` failures.
        """
        name = name[:MAX_NAME_LENGTH]
        with self.transaction() as conn:
            postgres = conn.dialect.name == "postgresql"
            if postgres:
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(CAST(:c AS integer), CAST(:k AS integer))"),
                    {"c": _PG_LOCK_NAME, "k": _name_lock_key(name)},
                )
            now = utc_now()
            self._prune_attempts(conn, now - ATTEMPT_RETENTION, postgres=postgres)
            if self._failures_since(conn, name, since) >= limit:
                return None
            result = conn.execute(insert(t.login_attempts).values(name=name, success=False, at=now))
            return self._inserted_id(result, "sign-in attempt")

    def finish_login(self, attempt_id: int, success: bool) -> None:
        """Record the outcome of an attempt reserved by :meth:`begin_login` (it stays a failure
        unless ``success``)."""
        if not success:
            return
        with self.transaction() as conn:
            conn.execute(
                update(t.login_attempts)
                .where(t.login_attempts.c.id == attempt_id)
                .values(success=True)
            )

    def failed_logins_since(self, name: str, since: datetime) -> int:
        """Failed sign-in attempts for ``name`` since ``since`` after its last success (attempts
        still being checked count as failed)."""
        with self.engine.connect() as conn:
            return self._failures_since(conn, name[:MAX_NAME_LENGTH], since)

    @staticmethod
    def _failures_since(conn: Connection, name: str, since: datetime) -> int:
        attempts = t.login_attempts
        last_ok = (
            select(func.max(attempts.c.id))
            .where(attempts.c.name == name, attempts.c.success.is_(True))
            .scalar_subquery()
        )
        count: int = conn.execute(
            select(func.count()).where(
                attempts.c.name == name,
                attempts.c.success.is_(False),
                attempts.c.at > since,
                attempts.c.id > func.coalesce(last_ok, 0),
            )
        ).scalar_one()
        return count

    @staticmethod
    def _prune_attempts(conn: Connection, cutoff: datetime, *, postgres: bool) -> None:
        """Delete up to a batch of the oldest attempts when they are older than ``cutoff``.

        Looks only at the oldest rows by id (a primary-key range), so it costs the same however
        many attempts are on record. On PostgreSQL one transaction prunes at a time; the others
        skip it rather than wait.
        """
        if postgres:
            claimed = conn.execute(
                text("SELECT pg_try_advisory_xact_lock(CAST(:c AS integer), 0)"),
                {"c": _PG_LOCK_PRUNE},
            ).scalar()
            if not claimed:
                return
        attempts = t.login_attempts
        oldest = (
            select(attempts.c.id, attempts.c.at)
            .order_by(attempts.c.id)
            .limit(_PRUNE_BATCH)
            .subquery()
        )
        expired = select(oldest.c.id).where(oldest.c.at < cutoff)
        conn.execute(delete(attempts).where(attempts.c.id.in_(expired)))
