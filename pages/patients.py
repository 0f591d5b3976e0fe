"""Patients: the four glands of a patient side by side, with totals and the OMERACT flag."""

from __future__ import annotations

import streamlit as st

from sgus_core.browsing import ensure_thumbnail, patient_glands
from sgus_core.errors import SgusError
from sgus_core.scoring import CAVEAT, GlandScore, patient_totals
from sgus_core.store import BrowseRow
from sgus_ui.state import page_dataset, require_account, store, thumbnail_cache

labels_store = store()
account = require_account()
st.title("Patients")
dataset = page_dataset()
patients = labels_store.patients(dataset.id)
if not patients:
    st.info("The images of this dataset have no patient ids.")
    st.stop()
cols = st.columns(2)
patient = cols[0].selectbox("Patient", patients, key="pt_patient")
raters = [r.name for r in labels_store.list_raters()]
default = raters.index(account.name) if account.name in raters else 0
rater = cols[1].selectbox("Grades of", raters, index=default, key="pt_rater")

glands = patient_glands(labels_store, dataset.id, patient, rater)
grid = st.columns(4)
scores = []
for col, gland in zip(grid, glands, strict=False):
    image, grade = gland.image, gland.grade
    with col:
        mask = labels_store.latest_masks(image.id).get(rater)
        row = BrowseRow(
            image, grade.devita if grade else None, None, mask.id if mask else None, None
        )
        try:
            st.image(str(ensure_thumbnail(labels_store, thumbnail_cache(), row)), width="stretch")
        except SgusError as exc:
            st.warning(str(exc))
        st.markdown(f"**{image.gland} {image.side}**")
        if grade is None:
            st.caption("not graded")
        else:
            st.metric("de Vita", grade.devita if grade.devita is not None else "–")
            st.caption(f"OMERACT {grade.omeract if grade.omeract is not None else '–'}")
    if image.gland and image.side:
        scores.append(
            GlandScore(
                image.gland,
                image.side,
                devita=grade.devita if grade else None,
                omeract=grade.omeract if grade else None,
                hocevar=grade.hocevar if grade else None,
            )
        )

try:
    totals = patient_totals(scores)
except SgusError as exc:
    st.error(str(exc))
    st.stop()
st.divider()
m = st.columns(4)
m[0].metric(
    "de Vita total (0-12)", totals.devita_total if totals.devita_total is not None else "incomplete"
)
m[1].metric("OMERACT max (0-3)", totals.omeract_max if totals.omeract_max is not None else "–")
m[2].metric(
    "Hocevar total (0-48)", totals.hocevar_total if totals.hocevar_total is not None else "–"
)
flag = totals.omeract_positive
m[3].metric("OMERACT >= 2 in any gland", {True: "yes", False: "no", None: "not settled"}[flag])
st.info(CAVEAT)
