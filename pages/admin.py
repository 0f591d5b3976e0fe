"""Study admin: create study rounds (blind, shuffled, repeat) and read the audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from sgus_core.errors import SgusError
from sgus_core.study.rounds import create_repeat_round, sample_round_images
from sgus_core.vocabulary import GLANDS
from sgus_ui.state import account_store, page_dataset, reader_store, require_account
from sgus_ui.text import count, plain
from sgus_ui.widgets import local_time, records_table

if TYPE_CHECKING:
    from sgus_core.auth import Account
    from sgus_core.store import Dataset, ImageRecord, LabelStore, StudyRound

AUDIT_ROWS = 200


def rounds_table(rounds: list[StudyRound]) -> None:
    """The dataset's study rounds."""
    if not rounds:
        st.caption("No study round in this dataset yet.")
        return
    st.markdown("#### Rounds")
    rows = [
        {
            "round": r.name,
            "images": len(r.image_ids),
            "raters": ", ".join(r.raters),
            "blind": r.blind,
            "shuffled": r.shuffled,
            "repeat of": next((p.name for p in rounds if p.id == r.repeat_of), ""),
            "created": local_time(r.created_at),
            "closed": local_time(r.closed_at) or "open",
        }
        for r in rounds
    ]
    records_table(rows, key="admin_rounds")


def round_images(
    dataset_images: list[ImageRecord], glands: list[str], limit: int, seed: int
) -> list[int]:
    """Up to ``limit`` image ids of the chosen glands, a seeded random sample spread over the
    patients (see ``sample_round_images``)."""
    every_gland = set(glands) == set(GLANDS)  # then frames of unknown gland too
    wanted = [i for i in dataset_images if i.gland in glands or (i.gland is None and every_gland)]
    return sample_round_images(wanted, limit, seed)


CREATED = "admin_round_created"  # the confirmation of the last round made, shown after the rerun


FORMS_DRAWN = "admin_forms_drawn"  # bumped per round made: the name fields start afresh


def created_and_rerun(message: str) -> None:
    """Confirm a new round on the next run (a message shown before ``st.rerun`` is never seen)
    and empty the forms' names, so pressing Create again does not try the same name (new widget
    keys: the browser kept a form's typed text when only its state was dropped)."""
    st.session_state[CREATED] = message
    st.session_state[FORMS_DRAWN] = st.session_state.get(FORMS_DRAWN, 0) + 1
    st.rerun()


def _fresh(key: str) -> str:
    """A form field's key, new after each round made."""
    return f"{key}_{st.session_state.get(FORMS_DRAWN, 0)}"


def new_round_form(labels_store: LabelStore, dataset: Dataset) -> None:
    """The form that creates a study round: name, raters, glands, size, blind and shuffled."""
    if message := st.session_state.pop(CREATED, None):
        st.success(message)
    raters = [r.name for r in labels_store.list_raters() if not r.disabled]
    with st.form("new_round", border=True):
        st.markdown("#### New round")
        name = st.text_input("Name", key=_fresh("round_name"), placeholder="e.g. round 1, blinded")
        chosen = st.multiselect("Raters", raters, key="round_raters")
        cols = st.columns(3)
        glands = cols[0].multiselect("Glands", GLANDS, default=list(GLANDS), key="round_glands")
        limit = cols[1].number_input("At most this many images", 1, 100_000, 40, key="round_limit")
        seed = cols[1].number_input(
            "Sample seed", 0, 2**31 - 1, 0, key="round_seed",
            help="The images are a random sample spread over the patients; the same seed "
            "draws the same sample.",
        )  # fmt: skip
        blind = cols[2].toggle("Blind (no model, no other raters)", value=True, key="round_blind")
        shuffled = cols[2].toggle("Shuffled order per rater", value=True, key="round_shuffled")
        create = st.form_submit_button("Create round", type="primary")
    if not create:
        return
    image_ids = round_images(labels_store.list_images(dataset.id), glands, int(limit), int(seed))
    try:
        new = account_store().create_round(
            name.strip(), dataset.id, image_ids, chosen, blind=blind, shuffled=shuffled
        )
    except SgusError as exc:
        st.error(str(exc))
    else:
        created_and_rerun(
            f"Round {new.name!r} created: {count(len(new.image_ids), 'image')}, "
            f"{count(len(new.raters), 'rater')}."
        )


def repeat_round_form(labels_store: LabelStore, account: Account, rounds: list[StudyRound]) -> None:
    """The form that repeats a round for one rater (intra-observer agreement)."""
    with st.form("repeat_round", border=True):
        st.markdown("#### Repeat round (intra-observer agreement)")
        parent_name = st.selectbox("Repeat of", [r.name for r in rounds], key="repeat_parent")
        parent = next(r for r in rounds if r.name == parent_name)
        rater = st.selectbox("For rater", parent.raters, key="repeat_rater")
        repeat_name = st.text_input(
            "Name", value=f"{parent_name} (repeat)", key=_fresh("repeat_name")
        )
        make = st.form_submit_button("Create repeat round")
    if not make:
        return
    try:
        if not account.can_manage:
            raise SgusError("Only an administrator may create rounds.")
        new = create_repeat_round(
            labels_store, parent, rater, repeat_name.strip(), actor=account.name
        )
    except SgusError as exc:
        st.error(str(exc))
    else:
        created_and_rerun(f"Repeat round {plain(new.name)} created: same images in a new order.")


def close_round_form(rounds: list[StudyRound]) -> None:
    """The form that closes a round: it takes no more labels, and a blind one stops hiding the
    other raters' labels and the model from its raters."""
    open_rounds = [r.name for r in rounds if r.is_open]
    if not open_rounds:
        return
    with st.form("close_round", border=True):
        st.markdown("#### Close a round")
        st.caption(
            "A closed round takes no more labels. Closing a blind round shows its raters the "
            "other raters' labels and the model on its images."
        )
        name = st.selectbox("Round", open_rounds, key="close_round_name")
        sure = st.checkbox("Every rater has finished this round", key="close_round_sure")
        close = st.form_submit_button("Close round")
    if not close:
        return
    if not sure:
        st.warning("Tick the box to confirm that the round's raters have finished.")
        return
    try:
        closed = account_store().close_round(name)
    except SgusError as exc:
        st.error(str(exc))
    else:
        st.success(f"Round {plain(closed.name)} closed.")
        st.rerun()


def audit_log(labels_store: LabelStore) -> None:
    """The latest entries of the audit log, newest first."""
    st.markdown("#### Audit log (newest first)")
    rows = [
        {
            "when": e.at,
            "who": e.actor,
            "action": e.action,
            "what": e.entity,
            "id": e.entity_id,
            "details": str(e.details or ""),
        }
        for e in labels_store.audit_log(limit=AUDIT_ROWS)
    ]
    records_table(rows, key="admin_audit")


def render() -> None:
    """The page: the rounds, the forms for an administrator, the audit log."""
    labels_store = reader_store()
    account = require_account()
    st.title("Study admin")
    dataset = page_dataset()
    if not account.can_manage:
        st.warning("Only an administrator can set up study rounds. You can read the rounds below.")
    rounds = labels_store.list_rounds(dataset.id)
    rounds_table(rounds)
    if account.can_manage:
        new_round_form(labels_store, dataset)
        if rounds:
            repeat_round_form(labels_store, account, rounds)
            close_round_form(rounds)
    audit_log(labels_store)


render()
