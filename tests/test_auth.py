"""Accounts: hashed passwords, rate-limited sign-in, roles enforced in the core."""

from __future__ import annotations

import numpy as np
import pytest

from sgus_core.auth import (
    MAX_FAILED_ATTEMPTS,
    Account,
    AccountStore,
    add_user,
    authenticate,
    disable_user,
    set_password,
)
from sgus_core.errors import PermissionDenied, StoreError
from sgus_core.imaging import encode_mask_png
from sgus_core.store import NewImage

PASSWORD = "correct horse battery"


def test_password_is_stored_hashed_never_in_clear(store):
    """The store keeps an Argon2 hash, and neither it nor the audit log holds the password."""
    add_user(store, "ana", "rater", PASSWORD)
    stored = store.password_hash("ana")
    assert stored.startswith("$argon2") and PASSWORD not in stored
    assert all(PASSWORD not in str(e.details) for e in store.audit_log())


def test_sign_in_with_the_right_password_gives_the_account(store):
    """A correct password signs in with the account's role."""
    add_user(store, "ana", "admin", PASSWORD)
    assert authenticate(store, "ana", PASSWORD) == Account("ana", "admin")


def test_wrong_password_and_unknown_name_get_the_same_message(store):
    """A wrong password and an unknown account are indistinguishable to the caller."""
    add_user(store, "ana", "rater", PASSWORD)
    with pytest.raises(PermissionDenied, match="Wrong name or password"):
        authenticate(store, "ana", "nope nope nope")
    with pytest.raises(PermissionDenied, match="Wrong name or password"):
        authenticate(store, "nobody", PASSWORD)


def test_repeated_failures_lock_the_account(store):
    """After too many failed attempts even the right password is refused for a while."""
    add_user(store, "ana", "rater", PASSWORD)
    for _ in range(MAX_FAILED_ATTEMPTS):
        with pytest.raises(PermissionDenied):
            authenticate(store, "ana", "guess guess guess")
    with pytest.raises(PermissionDenied, match="Too many failed"):
        authenticate(store, "ana", PASSWORD)


def test_disabled_accounts_cannot_sign_in_and_passwords_can_change(store):
    """passwd replaces the password; disable blocks sign-in."""
    add_user(store, "ana", "rater", PASSWORD)
    set_password(store, "ana", "another long password")
    with pytest.raises(PermissionDenied):
        authenticate(store, "ana", PASSWORD)
    assert authenticate(store, "ana", "another long password").name == "ana"
    disable_user(store, "ana")
    with pytest.raises(PermissionDenied, match="disabled"):
        authenticate(store, "ana", "another long password")


def test_short_passwords_and_unknown_roles_are_refused(store):
    """Weak passwords and unknown roles get clear messages."""
    with pytest.raises(PermissionDenied, match="at least"):
        add_user(store, "ana", "rater", "short")
    with pytest.raises(StoreError, match="Unknown role"):
        add_user(store, "ana", "boss", PASSWORD)


def test_a_rater_cannot_write_another_raters_label(store, tmp_path):
    """The core refuses a rater's save under someone else's name, and a viewer's save at all."""
    ds = store.ensure_dataset("d", tmp_path)
    for name in ("ana", "ben"):
        store.ensure_rater(name)
    image_id, _ = store.add_image(
        ds.id, NewImage(path="a.png", content_hash="h", width=4, height=4)
    )
    ana = AccountStore(store, Account("ana", "rater"))
    ana.save_grade(image_id, "ana", devita=1)
    with pytest.raises(PermissionDenied, match="only her own"):
        ana.save_grade(image_id, "ben", devita=1)
    with pytest.raises(PermissionDenied, match="only her own"):
        ana.save_mask(image_id, "ben", encode_mask_png(np.ones((4, 4), bool)), area_px=16,
                      source="manual")  # fmt: skip
    viewer = AccountStore(store, Account("vic", "viewer"))
    with pytest.raises(PermissionDenied, match="view but not"):
        viewer.save_grade(image_id, "vic", devita=1)
    with pytest.raises(PermissionDenied, match="administrator"):
        ana.create_round("r", ds.id, [image_id], ["ana"])
    assert [g.rater for g in store.grade_history(image_id)] == ["ana"]
    assert store.audit_log()[0].actor == "ana"


def test_admin_may_accept_another_raters_work(store, tmp_path):
    """An admin may accept or reject a rater's image but not save labels under her name."""
    ds = store.ensure_dataset("d", tmp_path)
    store.ensure_rater("ana")
    image_id, _ = store.add_image(
        ds.id, NewImage(path="a.png", content_hash="h", width=4, height=4)
    )
    admin = AccountStore(store, Account("boss", "admin"))
    admin.set_status(image_id, "ana", "accepted")
    with pytest.raises(PermissionDenied):
        admin.save_grade(image_id, "ana", devita=2)


def test_sessions_expire_after_the_idle_limit():
    """A session idle longer than the limit must sign in again; a recent one need not."""
    from datetime import UTC, datetime

    from sgus_core.auth import SESSION_IDLE_LIMIT, session_expired

    now = datetime.now(UTC)
    assert session_expired(now - SESSION_IDLE_LIMIT * 1.01, now)
    assert not session_expired(now - SESSION_IDLE_LIMIT * 0.5, now)
