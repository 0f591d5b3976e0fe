"""Accounts, roles and permission checks.

Roles: ``admin`` manages raters, datasets and rounds (and may label); ``rater`` writes only her
own labels; ``viewer`` reads. Passwords are hashed with Argon2id (argon2-cffi) and never stored or
logged in clear. Sign-in is rate-limited per account name through the store: each attempt is
reserved atomically before its password is checked, so the limit holds across threads and app
processes. A refusal takes as long for a name without an account as for a wrong password, and a
name longer than :data:`MAX_NAME_LENGTH` is refused before anything is looked up or stored.

Permissions are enforced here: pages and scripts write labels through :class:`AccountStore`, which
refuses a rater's request to write another rater's label whatever the page shows, a status that
judges work (:data:`REVIEW_STATUSES`) from anyone but an administrator, a label saved into a study
round its rater is not in, and any write (predictions included) by a viewer.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from sgus_core.errors import PermissionDenied, StoreError
from sgus_core.store import (
    Grade,
    LabelStore,
    MaskVersion,
    NewImage,
    PredictionRecord,
    Rater,
    StatusEvent,
    StudyRound,
)
from sgus_core.store.accounts import MAX_NAME_LENGTH
from sgus_core.vocabulary import ROLES, STATUSES

MIN_PASSWORD_LENGTH = 10
MAX_FAILED_ATTEMPTS = 5
LOCKOUT = timedelta(minutes=15)
SESSION_IDLE_LIMIT = timedelta(hours=8)
_HASHER = PasswordHasher()
_WRONG = "Wrong name or password."

RATER_STATUSES: tuple[str, ...] = ("todo", "in progress", "done", "flagged")
"""Statuses a rater may set on her own work: where it stands, not a judgement of it."""

REVIEW_STATUSES: tuple[str, ...] = tuple(s for s in STATUSES if s not in RATER_STATUSES)
"""Statuses that judge a rater's work ("accepted", "rejected"): only an administrator sets them."""


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


MAX_TOKEN_LENGTH = 100  # a browser token is 43 characters; anything much longer is not one


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _is_token(token: str) -> bool:
    return bool(token) and len(token) <= MAX_TOKEN_LENGTH


def open_sign_in(store: LabelStore, account: Account) -> str:
    """A new browser token for a signed-in account (only its SHA-256 is stored): the tab keeps
    it in its address (``?session=``) and resumes the sign-in with it after a reload."""
    token = secrets.token_urlsafe(32)
    store.open_sign_in(account.name, _token_hash(token))
    return token


def resume_sign_in(store: LabelStore, token: str) -> Account | None:
    """The account of an open sign-in, or ``None`` when the token is unknown, signed out,
    idle longer than :data:`SESSION_IDLE_LIMIT` or its account disabled (a password change or
    disabling ends every open sign-in of the account). Using it keeps it from going idle."""
    if not _is_token(token):
        return None
    rater = store.resume_sign_in(_token_hash(token), SESSION_IDLE_LIMIT)
    return None if rater is None else Account(rater.name, rater.role)


def end_sign_in(store: LabelStore, token: str) -> None:
    """Sign out: the token no longer resumes anything."""
    if _is_token(token):
        store.end_sign_in(_token_hash(token))


def session_expired(last_seen: datetime, now: datetime | None = None) -> bool:
    """Whether a signed-in session idle since ``last_seen`` must sign in again."""
    return (now or datetime.now(UTC)) - last_seen > SESSION_IDLE_LIMIT


class AccountStore:
    """The labels store as seen by one account: every write is checked and audited under it.

    Reads go straight to the store. Writes: a viewer writes nothing, predictions included; a rater
    writes only labels under her own name, with :data:`RATER_STATUSES`, and in a round only when
    she rates it; an admin may also accept or reject anyone's work and manage raters and rounds.
    """

    def __init__(self, store: LabelStore, account: Account) -> None:
        self.store = store
        self.account = account

    def _require_labeller(self, rater: str) -> None:
        self.require_may_write()
        if rater != self.account.name:
            raise PermissionDenied(
                f"{self.account.name} may save only her own labels, not those of {rater}."
            )

    def _require_admin(self, what: str) -> None:
        if not self.account.can_manage:
            raise PermissionDenied(f"Only an administrator may {what}.")

    def _require_round_member(self, image_id: int, rater: str, round_id: int | None) -> None:
        """Refuse a label saved into a round that ``rater`` does not rate or that lacks the image.

        Raises:
            StoreError: no round with that id.
            PermissionDenied: the rater is not one of the round's raters, the image is not one
                of its images, or the round is closed.
        """
        if round_id is None:
            return
        study_round = self.store.get_round(int(round_id))
        if study_round is None:
            raise StoreError(f"No study round with id {round_id}.")
        if rater not in study_round.raters:
            raise PermissionDenied(
                f"{rater} is not a rater of the round {study_round.name!r}; "
                "only its raters' labels can be saved in it."
            )
        if image_id not in study_round.image_ids:
            raise PermissionDenied(f"Image {image_id} is not in the round {study_round.name!r}.")
        if not study_round.is_open:
            raise PermissionDenied(
                f"The round {study_round.name!r} is closed; it takes no more labels."
            )

    def require_may_write(self) -> None:
        """Refuse every write of an account that may only view.

        Raises:
            PermissionDenied: the account is a viewer.
        """
        if not self.account.can_label:
            raise PermissionDenied(f"{self.account.name} may view but not save labels.")

    def save_mask(self, image_id: int, rater: str, png: bytes, **kw: Any) -> MaskVersion:
        """:meth:`LabelStore.save_mask` for the account's own labels (in a round she rates)."""
        self._require_labeller(rater)
        self._require_round_member(image_id, rater, kw.get("round_id"))
        return self.store.save_mask(image_id, rater, png, actor=self.account.name, **kw)

    def save_grade(self, image_id: int, rater: str, **kw: Any) -> Grade:
        """:meth:`LabelStore.save_grade` for the account's own labels (in a round she rates)."""
        self._require_labeller(rater)
        self._require_round_member(image_id, rater, kw.get("round_id"))
        return self.store.save_grade(image_id, rater, actor=self.account.name, **kw)

    def set_status(self, image_id: int, rater: str, status: str, **kw: Any) -> StatusEvent:
        """:meth:`LabelStore.set_status`: a rater sets her own work's :data:`RATER_STATUSES`;
        only an admin sets :data:`REVIEW_STATUSES`, on anyone's work. With a ``round_id`` the
        work's rater must rate that round and the image be in it.

        Raises:
            PermissionDenied: a viewer, another rater's work, a judging status from a rater, or a
                round the rater is not in.
            StoreError: no round with that id, or a status the store does not know.
        """
        if status in REVIEW_STATUSES:
            self.require_may_write()
            self._require_admin(f"mark work as {status}")
        else:
            self._require_labeller(rater)
        self._require_round_member(image_id, rater, kw.get("round_id"))
        return self.store.set_status(image_id, rater, status, actor=self.account.name, **kw)

    def save_prediction(
        self, image_id: int, model_name: str, png: bytes, **kw: Any
    ) -> PredictionRecord:
        """:meth:`LabelStore.save_prediction` run by this person (not a viewer), audited under her
        name rather than the model's."""
        self.require_may_write()
        return self.store.save_prediction(image_id, model_name, png, actor=self.account.name, **kw)

    def add_frames(
        self, dataset: str, root_path: Path, new_images: Sequence[NewImage]
    ) -> list[tuple[int, bool]]:
        """Add frames to a dataset (created, rooted at ``root_path``, when it is new), audited
        under this person (a viewer is refused): what Live's Capture writes."""
        self.require_may_write()
        ds = self.store.ensure_dataset(dataset, root_path, actor=self.account.name)
        return self.store.add_images(ds.id, new_images, actor=self.account.name)

    def create_round(self, *args: Any, **kw: Any) -> StudyRound:
        """:meth:`LabelStore.create_round` (admins only)."""
        self._require_admin("create study rounds")
        return self.store.create_round(*args, actor=self.account.name, **kw)

    def close_round(self, name_or_id: str | int) -> StudyRound:
        """:meth:`LabelStore.close_round` (admins only)."""
        self._require_admin("close study rounds")
        return self.store.close_round(name_or_id, actor=self.account.name)

    def ensure_rater(self, name: str, **kw: Any) -> Rater:
        """:meth:`LabelStore.ensure_rater` (admins only)."""
        self._require_admin("add raters")
        return self.store.ensure_rater(name, actor=self.account.name, **kw)
