"""Sign-in under attack: the lockout holds in parallel, a disabled account's open session ends,
and an unknown name neither writes unbounded rows nor answers faster than a known one."""

from __future__ import annotations

import statistics
import threading
import time

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from sgus_core.auth import MAX_FAILED_ATTEMPTS, Account, add_user, authenticate, disable_user
from sgus_core.errors import PermissionDenied, StoreError
from sgus_core.settings import REPO_ROOT
from sgus_core.store import LabelStore
from sgus_core.store import schema as t

APP = str(REPO_ROOT / "streamlit_app.py")
PASSWORD = "correct horse battery"
WRONG = "wrong horse battery"


def _attempts(store: LabelStore) -> list[tuple[int, str, bool]]:
    """Every recorded sign-in attempt as ``(id, name, success)``, oldest first."""
    cols = (t.login_attempts.c.id, t.login_attempts.c.name, t.login_attempts.c.success)
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(*cols).order_by(t.login_attempts.c.id))]


# ---------------------------------------------------------------- the lockout, in parallel


def test_parallel_guesses_cannot_outrun_the_lockout(store):
    """30 sign-ins at once (29 wrong, 1 right): every attempt that is checked is counted, no more
    than the limit of failures get checked, and the right password gets in only if fewer than
    MAX_FAILED_ATTEMPTS failures were recorded before it."""
    add_user(store, "ana", "rater", PASSWORD)
    passwords = [WRONG] * 29 + [PASSWORD]
    start = threading.Barrier(len(passwords))
    answers: list[str] = [""] * len(passwords)

    def attempt(i: int) -> None:
        start.wait()
        try:
            authenticate(store, "ana", passwords[i])
            answers[i] = "signed in"
        except PermissionDenied as exc:
            answers[i] = "locked" if "Too many failed" in str(exc) else "wrong"

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(passwords))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert all(answers), "an attempt neither signed in nor was refused"
    assert set(answers[:29]) <= {"wrong", "locked"}
    assert answers[29] in ("signed in", "locked")

    rows = _attempts(store)
    failures = [row for row in rows if not row[2]]
    # Exactly the wrong attempts that were checked are on record; locked ones were not checked.
    assert len(failures) == answers.count("wrong")
    successes = [row for row in rows if row[2]]
    if answers[29] == "signed in":
        (ok_id, _, _) = successes[0]
        assert sum(1 for row in failures if row[0] < ok_id) < MAX_FAILED_ATTEMPTS
        # after the success the count starts again: at most the limit more are checked
        assert sum(1 for row in failures if row[0] > ok_id) <= MAX_FAILED_ATTEMPTS
    else:
        assert not successes
        assert len(failures) == MAX_FAILED_ATTEMPTS
        with pytest.raises(PermissionDenied, match="Too many failed"):
            authenticate(store, "ana", PASSWORD)


def test_a_locked_name_is_not_checked_or_recorded(store):
    """Once the limit of failures is on record, further attempts are refused without a check and
    without a new row."""
    add_user(store, "ana", "rater", PASSWORD)
    for _ in range(MAX_FAILED_ATTEMPTS):
        with pytest.raises(PermissionDenied, match="Wrong name or password"):
            authenticate(store, "ana", WRONG)
    before = len(_attempts(store))
    for _ in range(3):
        with pytest.raises(PermissionDenied, match="Too many failed"):
            authenticate(store, "ana", PASSWORD)
    assert len(_attempts(store)) == before


def test_a_success_resets_the_count(store):
    """Four failures, then the right password: the next four failures do not lock the account."""
    add_user(store, "ana", "rater", PASSWORD)
    for _ in range(2):
        for _ in range(MAX_FAILED_ATTEMPTS - 1):
            with pytest.raises(PermissionDenied, match="Wrong name or password"):
                authenticate(store, "ana", WRONG)
        assert authenticate(store, "ana", PASSWORD) == Account("ana", "rater")


# ---------------------------------------------------------------- disabled and changed accounts


def test_enable_user_lets_a_disabled_account_sign_in_again(store):
    """enable_user undoes disable_user; both refuse an unknown name."""
    from sgus_core.auth import enable_user

    add_user(store, "ana", "rater", PASSWORD)
    disable_user(store, "ana")
    with pytest.raises(PermissionDenied, match="disabled"):
        authenticate(store, "ana", PASSWORD)
    enable_user(store, "ana")
    assert authenticate(store, "ana", PASSWORD) == Account("ana", "rater")
    with pytest.raises(StoreError, match="No account"):
        enable_user(store, "nobody")


def test_current_account_follows_the_store(store):
    """The account of an open session is re-read: disabled or unknown gives None, a new role
    shows at once."""
    from sgus_core.auth import current_account

    add_user(store, "ana", "rater", PASSWORD)
    assert current_account(store, "ana") == Account("ana", "rater")
    store.update_account("ana", role="viewer")
    assert current_account(store, "ana") == Account("ana", "viewer")
    disable_user(store, "ana")
    assert current_account(store, "ana") is None
    assert current_account(store, "nobody") is None


def test_cli_user_enable(tmp_path, monkeypatch, capsys):
    """`sgus user disable` then `sgus user enable` brings the account back."""
    from sgus_cli.main import main

    url = f"sqlite:///{tmp_path / 'a.db'}"
    monkeypatch.setenv("SGUS_DB_URL", url)
    with LabelStore(url) as labels:
        add_user(labels, "ana", "rater", PASSWORD)
    assert main(["user", "disable", "ana"]) == 0
    assert main(["user", "enable", "ana"]) == 0
    assert "enabled ana" in capsys.readouterr().out
    with LabelStore(url) as labels:
        assert authenticate(labels, "ana", PASSWORD).name == "ana"
    assert main(["user", "enable", "nobody"]) == 1


@pytest.fixture
def serve_env(tmp_path, monkeypatch):
    """An empty store in serve mode with the rater ``ana``; returns the store's URL."""
    url = f"sqlite:///{tmp_path / 'sgus.db'}"
    monkeypatch.setenv("SGUS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SGUS_DB_URL", url)
    monkeypatch.setenv("SGUS_APP_MODE", "serve")
    with LabelStore(url) as labels:
        add_user(labels, "ana", "rater", PASSWORD)
    return url


def _signed_in_app() -> AppTest:
    """An app session in which ana signed in through the form."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.text_input(key="sign_in_name").input("ana")
    at.text_input(key="sign_in_password").input(PASSWORD)
    at.button[0].click().run()
    assert any("Signed in as **ana** (rater)" in m.value for m in at.sidebar.markdown)
    return at


def _next_run(at: AppTest) -> AppTest:
    """The session's next run of the app, through its entrypoint.

    AppTest reruns a multipage app whose folder has ``pages/`` by running the page file alone,
    without the router, unlike the server; so the next run is a fresh AppTest holding this
    session's state (what a browser tab of the session sends on its next interaction).
    """
    nxt = AppTest.from_file(APP, default_timeout=60)
    for key in ("account", "last_seen", "rater"):
        nxt.session_state[key] = at.session_state[key]
    nxt.run()
    assert not nxt.exception
    return nxt


def test_disabling_an_account_ends_its_open_session(serve_env):
    """A session signed in before its account was disabled is back at the sign-in form, told
    why, on its next run; the same for an account that no longer exists."""
    at = _signed_in_app()
    assert any("Signed in as **ana**" in m.value for m in _next_run(at).sidebar.markdown)
    with LabelStore(serve_env) as labels:
        disable_user(labels, "ana")
    after = _next_run(at)
    assert not any("Signed in as" in m.value for m in after.sidebar.markdown)
    assert "sign_in_name" in [w.key for w in after.text_input]
    assert any("signed out" in w.value for w in after.warning)
    assert "account" not in after.session_state

    at.session_state["account"] = Account("nobody", "admin")
    gone = _next_run(at)
    assert "sign_in_name" in [w.key for w in gone.text_input]
    assert "account" not in gone.session_state


def test_a_role_change_reaches_an_open_session(serve_env):
    """A session signed in as a rater works with the new role on its next run."""
    at = _signed_in_app()
    with LabelStore(serve_env) as labels:
        labels.update_account("ana", role="viewer")
    after = _next_run(at)
    assert any("Signed in as **ana** (viewer)" in m.value for m in after.sidebar.markdown)
    assert after.session_state["account"] == Account("ana", "viewer")


def _reloaded(at: AppTest) -> AppTest:
    """The same address opened again (a reload or a new tab): no session state, the address's
    query parameters only."""
    fresh = AppTest.from_file(APP, default_timeout=60)
    fresh.query_params.update(at.query_params)
    fresh.run()
    assert not fresh.exception
    return fresh


def _is_signed_in(at: AppTest) -> bool:
    return any("Signed in as **ana**" in m.value for m in at.sidebar.markdown)


def test_a_reload_keeps_the_sign_in_until_sign_out(serve_env):
    """Signing in puts a token in the address; reloading it resumes the sign-in without the
    password (and the store holds only the token's hash). Signing out ends it: the same
    address then shows the sign-in form and says why."""
    at = _signed_in_app()
    token = at.query_params["session"]
    assert len(token) >= 40
    assert _is_signed_in(_reloaded(at))
    with LabelStore(serve_env) as labels, labels.engine.connect() as conn:
        hashes = conn.execute(select(t.sign_ins.c.token_hash)).scalars().all()
    assert hashes and token not in hashes

    from sgus_core.auth import end_sign_in

    with LabelStore(serve_env) as labels:  # what the sidebar's Sign out does (AppTest reruns a
        end_sign_in(labels, token)  # page without the router that draws the sidebar)
    again = _reloaded(at)
    assert not _is_signed_in(again) and "sign_in_name" in [w.key for w in again.text_input]
    assert any("sign-in has ended" in w.value for w in again.warning)


def test_disabling_or_a_new_password_ends_every_open_sign_in(serve_env):
    """An address signed in before the account was disabled, or before its password was
    changed, no longer resumes; enabling the account again does not revive it."""
    from sgus_core.auth import enable_user, set_password

    at = _signed_in_app()
    with LabelStore(serve_env) as labels:
        disable_user(labels, "ana")
        enable_user(labels, "ana")
    assert not _is_signed_in(_reloaded(at))

    at = _signed_in_app()
    with LabelStore(serve_env) as labels:
        set_password(labels, "ana", "another-long-password")
    assert not _is_signed_in(_reloaded(at))


def test_an_idle_sign_in_does_not_resume(serve_env):
    """A sign-in unused for longer than the idle limit is ended when its address comes back."""
    from datetime import UTC, datetime

    from sgus_core.auth import SESSION_IDLE_LIMIT, resume_sign_in

    at = _signed_in_app()
    token = at.query_params["session"]
    with LabelStore(serve_env) as labels:
        with labels.engine.begin() as conn:
            stale = datetime.now(UTC) - SESSION_IDLE_LIMIT * 1.1
            conn.execute(t.sign_ins.update().values(last_seen_at=stale))
        assert resume_sign_in(labels, token) is None
        assert resume_sign_in(labels, "not-a-token") is None
        with labels.engine.connect() as conn:
            assert conn.execute(select(t.sign_ins.c.ended_at)).scalar() is not None
    assert not _is_signed_in(_reloaded(at))


# ---------------------------------------------------------------- bounded, constant-time answers


def test_a_huge_name_stores_at_most_the_bound(store):
    """A 500,000-character name is refused without storing it: no attempt row holds more than
    MAX_NAME_LENGTH characters."""
    from sgus_core.auth import MAX_NAME_LENGTH

    huge = "x" * 500_000
    with pytest.raises(PermissionDenied, match="Wrong name or password"):
        authenticate(store, huge, PASSWORD)
    with store.engine.connect() as conn:
        longest = conn.execute(select(func.max(func.length(t.login_attempts.c.name)))).scalar()
    assert (longest or 0) <= MAX_NAME_LENGTH
    assert store.get_rater(huge) is None
    with pytest.raises(StoreError, match="at most"):
        add_user(store, "y" * (MAX_NAME_LENGTH + 1), "rater", PASSWORD)


def test_old_attempts_are_pruned(store):
    """Attempt rows older than a day are deleted when the next attempt is recorded."""
    from datetime import timedelta

    from sqlalchemy import insert

    from sgus_core.store.base import utc_now

    old = utc_now() - timedelta(days=2)
    with store.transaction() as conn:
        conn.execute(
            insert(t.login_attempts),
            [{"name": f"spray{i}", "success": False, "at": old} for i in range(50)],
        )
    with pytest.raises(PermissionDenied):
        authenticate(store, "nobody", PASSWORD)
    assert [name for _, name, _ in _attempts(store)] == ["nobody"]


def _seconds(store: LabelStore, name: str) -> float:
    began = time.perf_counter()
    with pytest.raises(PermissionDenied, match="Wrong name or password"):
        authenticate(store, name, WRONG)
    return time.perf_counter() - began


def test_an_unknown_name_takes_as_long_as_a_wrong_password(store):
    """The time to refuse a missing name is within a small factor of the time to refuse a known
    name with a wrong password (medians of interleaved tries), so timing does not tell which
    names have accounts."""
    add_user(store, "ana", "rater", PASSWORD)
    known: list[float] = []
    missing: list[float] = []
    for i in range(MAX_FAILED_ATTEMPTS - 1):  # stay below the lockout of the known name
        known.append(_seconds(store, "ana"))
        missing.append(_seconds(store, f"nobody-{i}"))
    assert statistics.median(missing) > 0.3 * statistics.median(known), (known, missing)
