"""Study admin: create study rounds (blind, shuffled, repeat) and read the audit log."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from sgus_core.errors import SgusError
from sgus_core.rounds import create_repeat_round
from sgus_core.store import ImageFilter
from sgus_core.store.schema import GLANDS
from sgus_ui.state import account_store, page_dataset, require_account, store

labels_store = store()
account = require_account()
st.title("Study admin")
dataset = page_dataset()
if not account.can_manage:
    st.warning("Only an administrator can set up study rounds. You can read the rounds below.")

rounds = labels_store.list_rounds(dataset.id)
if rounds:
    st.markdown("#### Rounds")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "round": r.name,
                    "images": len(r.image_ids),
                    "raters": ", ".join(r.raters),
                    "blind": r.blind,
                    "shuffled": r.shuffled,
                    "repeat of": next((p.name for p in rounds if p.id == r.repeat_of), ""),
                    "created": r.created_at,
                }
                for r in rounds
            ]
        ),
        hide_index=True,
        key="admin_rounds",
    )
else:
    st.caption("No study round in this dataset yet.")

if account.can_manage:
    raters = [r.name for r in labels_store.list_raters() if not r.disabled]
    with st.form("new_round", border=True):
        st.markdown("#### New round")
        name = st.text_input("Name", key="round_name", placeholder="e.g. round 1, blinded")
        chosen = st.multiselect("Raters", raters, key="round_raters")
        cols = st.columns(3)
        glands = cols[0].multiselect("Glands", GLANDS, default=list(GLANDS), key="round_glands")
        limit = cols[1].number_input("At most this many images", 1, 100_000, 40, key="round_limit")
        blind = cols[2].toggle("Blind (no model, no other raters)", value=True, key="round_blind")
        shuffled = cols[2].toggle("Shuffled order per rater", value=True, key="round_shuffled")
        create = st.form_submit_button("Create round", type="primary")
    if create:
        image_ids = []
        for gland in glands:
            rows, _ = labels_store.browse(
                ImageFilter(dataset_id=dataset.id, gland=gland), sort="added", limit=int(limit)
            )
            image_ids += [r.image.id for r in rows]
        try:
            new = account_store().create_round(
                name.strip(),
                dataset.id,
                sorted(image_ids)[: int(limit)],
                chosen,
                blind=blind,
                shuffled=shuffled,
            )
        except SgusError as exc:
            st.error(str(exc))
        else:
            st.success(
                f"Round {new.name!r} created: {len(new.image_ids)} images, {len(new.raters)} raters."
            )
            st.rerun()

    if rounds:
        with st.form("repeat_round", border=True):
            st.markdown("#### Repeat round (intra-observer agreement)")
            parent_name = st.selectbox("Repeat of", [r.name for r in rounds], key="repeat_parent")
            parent = next(r for r in rounds if r.name == parent_name)
            rater = st.selectbox("For rater", parent.raters, key="repeat_rater")
            repeat_name = st.text_input("Name", value=f"{parent_name} (repeat)", key="repeat_name")
            make = st.form_submit_button("Create repeat round")
        if make:
            try:
                if not account.can_manage:
                    raise SgusError("Only an administrator may create rounds.")
                new = create_repeat_round(
                    labels_store, parent, rater, repeat_name.strip(), actor=account.name
                )
            except SgusError as exc:
                st.error(str(exc))
            else:
                st.success(f"Repeat round {new.name!r} created: same images in a new order.")
                st.rerun()

st.markdown("#### Audit log (newest first)")
entries = labels_store.audit_log(limit=200)
st.dataframe(
    pd.DataFrame(
        [
            {
                "when": e.at,
                "who": e.actor,
                "action": e.action,
                "what": e.entity,
                "id": e.entity_id,
                "details": str(e.details or ""),
            }
            for e in entries
        ]
    ),
    hide_index=True,
    key="admin_audit",
)
