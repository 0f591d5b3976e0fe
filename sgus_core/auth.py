"""Accounts, roles and permission checks.

Roles: ``admin`` manages raters, datasets and rounds (and may label); ``rater`` writes only her
own labels; ``viewer`` reads. Passwords are hashed with Argon2id (argon2-cffi) and never stored or
logged in clear. Sign-in is rate-limited per account name through the store: each attempt is
reserved atomically before its password is checked, so the limit holds across threads and app
processes. A refusal takes as long for a name without an account as for a wrong password, and a
name longer than :data:`MAX_NAME_LENGTH` is refused before anything is looked up or stored.

Permissions are enforced here: pages and scripts write labels through :class:`AccountStore`, which
refuses a rater's request to write another rater's label whatever the page shows.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from sgus_core.errors import PermissionDenied, StoreError
from sgus_core.store import Grade, LabelStore, MaskVersion, Rater, StatusEvent, StudyRound
from sgus_core.store.accounts import MAX_NAME_LENGTH
from sgus_core.vocabulary import ROLES

MIN_PASSWORD_LENGTH = 10
MAX_FAILED_ATTEMPTS = 5
LOCKOUT = timedelta(minutes=15)
SESSION_IDLE_LIMIT = timedelta(hours=8)
_HASHER = PasswordHasher()
_WRONG = "Wrong name or password."


@dataclass(frozen=True)
class Account:
    """A signed-in person."""

    name: str
    role: str

    @property
    def can_manage(self) -> bool:
        """Admins manage raters, datasets and rounds."""
        return self.role == "admin"

    @property
    def can_label(self) -> bool:
        """Admins and raters save labels (their own)."""
        return self.role in ("admin", "rater")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PermissionDenied(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")


@cache
def _dummy_hash() -> str:
    """A hash of a random secret, made once with the same parameters as real ones: checking a
    password against it costs what checking against an account's hash does."""
    return _HASHER.hash(secrets.token_urlsafe(32))


def _verify(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored``; with no stored hash, the same Argon2 work is done
    against a dummy hash (and the answer is no), so timing does not reveal missing accounts."""
    try:
        matched = _HASHER.verify(stored or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return bool(matched and stored)


def add_user(
    store: LabelStore, name: str, role: str, password: str, *, actor: str = "admin"
) -> Account:
    """Create an account with a password (or give an existing rater a password and role).

    Raises:
        PermissionDenied: the password is too short.
        StoreError: unknown role, a name longer than ``MAX_NAME_LENGTH`` characters, or the
            account already has a password.
    """
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise StoreError(f"An account name has at most {MAX_NAME_LENGTH} characters.")
    if role not in ROLES:
        raise StoreError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.")
    _check_password(password)
    store.ensure_rater(name, role=role, actor=actor)
    if store.password_hash(name):
        raise StoreError(f"{name} already has an account; use `sgus user passwd {name}`.")
    rater = store.update_account(
        name, password_hash=_HASHER.hash(password), role=role, disabled=False, actor=actor
    )
    return Account(rater.name, rater.role)


def set_password(store: LabelStore, name: str, password: str, *, actor: str = "admin") -> None:
    """Replace an account's password.

    Raises:
        StoreError: no such account.
    """
    _check_password(password)
    if store.get_rater(name) is None:
        raise StoreError(f"No account named {name!r}.")
    store.update_account(name, password_hash=_HASHER.hash(password), actor=actor)


def disable_user(store: LabelStore, name: str, *, actor: str = "admin") -> None:
    """Disable an account: it can no longer sign in, and an open session of it is signed out on
    its next page run (see :func:`current_account`); its labels stay.

    Raises:
        StoreError: no such account.
    """
    if store.get_rater(name) is None:
        raise StoreError(f"No account named {name!r}.")
    store.update_account(name, disabled=True, actor=actor)


def enable_user(store: LabelStore, name: str, *, actor: str = "admin") -> None:
    """Enable a disabled account again: it signs in with its password as before.

    Raises:
        StoreError: no such account.
    """
    if store.get_rater(name) is None:
        raise StoreError(f"No account named {name!r}.")
    store.update_account(name, disabled=False, actor=actor)


def current_account(store: LabelStore, name: str) -> Account | None:
    """The account ``name`` as the store has it now, for a session signed in earlier: ``None``
    when it is disabled or gone (the session must sign out), else its current role."""
    rater = store.get_rater(name)
    if rater is None or rater.disabled:
        return None
    return Account(rater.name, rater.role)


def authenticate(store: LabelStore, name: str, password: str) -> Account:
    """Check a sign-in; returns the account.

    The attempt is first reserved in the store (counted as failed until the password proves
    right), atomically with counting the name's earlier failures; a name with
    ``MAX_FAILED_ATTEMPTS`` failures in the last ``LOCKOUT`` (since its last success) is refused
    without checking the password. A name with no account (or no password) is checked against a
    dummy hash, so it is refused in the same time as a wrong password. An empty name or one
    longer than ``MAX_NAME_LENGTH`` characters is refused before any lookup and leaves no record.

    Raises:
        PermissionDenied: wrong name or password (one message for both), disabled account, or
            too many failed attempts (locked for 15 minutes).
    """
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise PermissionDenied(_WRONG)
    since = datetime.now(UTC) - LOCKOUT
    attempt = store.begin_login(name, since, MAX_FAILED_ATTEMPTS)
    if attempt is None:
        raise PermissionDenied(
            f"Too many failed sign-ins for {name}; try again in {LOCKOUT.seconds // 60} minutes."
        )
    rater = store.get_rater(name)
    ok = _verify(store.password_hash(name), password) and rater is not None
    store.finish_login(attempt, ok)
    if not ok or rater is None:
        raise PermissionDenied(_WRONG)
    if rater.disabled:
        raise PermissionDenied(f"The account {name} is disabled; ask an administrator.")
    return Account(rater.name, rater.role)


def session_expired(last_seen: datetime, now: datetime | None = None) -> bool:
    """Whether a signed-in session idle since ``last_seen`` must sign in again."""
    return (now or datetime.now(UTC)) - last_seen > SESSION_IDLE_LIMIT


class AccountStore:
    """The labels store as seen by one account: every write is checked and audited under it.

    Reads go straight to the store. Writes: a viewer writes nothing; a rater writes only labels
    under her own name; an admin may also manage datasets, raters and rounds.
    """

    def __init__(self, store: LabelStore, account: Account) -> None:
        self.store = store
        self.account = account

    def _require_labeller(self, rater: str) -> None:
        if not self.account.can_label:
            raise PermissionDenied(f"{self.account.name} may view but not save labels.")
        if rater != self.account.name:
            raise PermissionDenied(
                f"{self.account.name} may save only her own labels, not those of {rater}."
            )

    def _require_admin(self, what: str) -> None:
        if not self.account.can_manage:
            raise PermissionDenied(f"Only an administrator may {what}.")

    def save_mask(self, image_id: int, rater: str, png: bytes, **kw: Any) -> MaskVersion:
        """:meth:`LabelStore.save_mask` for the account's own labels."""
        self._require_labeller(rater)
        return self.store.save_mask(image_id, rater, png, actor=self.account.name, **kw)

    def save_grade(self, image_id: int, rater: str, **kw: Any) -> Grade:
        """:meth:`LabelStore.save_grade` for the account's own labels."""
        self._require_labeller(rater)
        return self.store.save_grade(image_id, rater, actor=self.account.name, **kw)

    def set_status(self, image_id: int, rater: str, status: str, **kw: Any) -> StatusEvent:
        """:meth:`LabelStore.set_status`; admins may accept or reject anyone's work."""
        if not (self.account.can_manage and status in ("accepted", "rejected")):
            self._require_labeller(rater)
        return self.store.set_status(image_id, rater, status, actor=self.account.name, **kw)

    def create_round(self, *args: Any, **kw: Any) -> StudyRound:
        """:meth:`LabelStore.create_round` (admins only)."""
        self._require_admin("create study rounds")
        return self.store.create_round(*args, actor=self.account.name, **kw)

    def ensure_rater(self, name: str, **kw: Any) -> Rater:
        """:meth:`LabelStore.ensure_rater` (admins only)."""
        self._require_admin("add raters")
        return self.store.ensure_rater(name, actor=self.account.name, **kw)
