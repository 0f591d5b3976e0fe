"""Patients: the four glands of a patient side by side, with totals and the OMERACT flag."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from sgus_core.browse import ANY_READING, patient_glands
from sgus_core.store import BrowseRow
from sgus_core.study.scoring import CAVEAT, GlandScore, patient_totals
from sgus_ui.state import page_dataset, reader_store, require_account
from sgus_ui.widgets import or_dash, stop_on_error, thumbnail

if TYPE_CHECKING:
    from sgus_core.auth import Account
    from sgus_core.browse import PatientGland
    from sgus_core.store import Dataset, LabelStore
    from sgus_core.study.scoring import PatientTotals
    from sgus_core.study.visibility import ReaderStore

OMERACT_FLAG = {True: "yes", False: "no", None: "open"}  # open: glands still ungraded


def choose_patient(labels_store: LabelStore, dataset: Dataset, account: Account) -> tuple[str, str]:
    """The patient and whose grades to show; stops when the images have no patient ids."""
    patients = labels_store.patients(dataset.id)
    if not patients:
        st.info("The images of this dataset have no patient ids.")
        st.stop()
    cols = st.columns(2)
    patient = cols[0].selectbox("Patient", patients, key="pt_patient")
    raters = [r.name for r in labels_store.list_raters()]
    default = raters.index(account.name) if account.name in raters else 0
    rater = cols[1].selectbox("Grades of", raters, index=default, key="pt_rater")
    return patient, rater


def choose_reading(labels_store: ReaderStore, dataset: Dataset, rater: str) -> int | None | str:
    """Which of the rater's readings to total, when she is a rater of rounds of the dataset:
    the newest grade of any, those saved outside rounds, or one round's (a repeat round is a
    second reading of the same glands; totals must not mix the two)."""
    rounds = [
        r for r in labels_store.list_rounds() if r.dataset_id == dataset.id and rater in r.raters
    ]
    if not rounds:
        return ANY_READING
    choices: dict[str, int | None | str] = {"newest grade of any reading": ANY_READING}
    choices["outside rounds"] = None
    choices |= {f"round {r.name}": r.id for r in rounds}
    label = st.selectbox(
        "Reading",
        list(choices),
        key=f"pt_reading_{rater}",
        help="A rater who graded the same glands in several rounds (a repeat round for "
        "intra-observer agreement) has one reading per round.",
    )
    return choices[label]


def gland_card(labels_store: ReaderStore, gland: PatientGland, rater: str) -> None:
    """One gland: its thumbnail with the rater's outline, its name and the rater's grades."""
    image, grade = gland.image, gland.grade
    mask = labels_store.latest_masks(image.id).get(rater)
    row = BrowseRow(image, grade.devita if grade else None, None, mask.id if mask else None, None)
    thumbnail(labels_store, row)
    st.markdown(f"**{image.gland} {image.side}**")
    if grade is None:
        blind = labels_store.blind_round_of(image.id) if rater != labels_store.reader else None
        st.caption(
            f'hidden from you while the blind round "{blind.name}" is open'
            if blind
            else "not graded"
        )
    else:
        st.metric("de Vita", or_dash(grade.devita))
        st.caption(f"OMERACT {or_dash(grade.omeract)}")
        if grade.doppler is not None:
            st.caption(f"OMERACT Doppler {grade.doppler}")


def gland_score(gland: PatientGland) -> GlandScore | None:
    """The gland's scores for the patient totals (None when its gland or side is unknown)."""
    image, grade = gland.image, gland.grade
    if not (image.gland and image.side):
        return None
    return GlandScore(
        image.gland,
        image.side,
        devita=grade.devita if grade else None,
        omeract=grade.omeract if grade else None,
        hocevar=grade.hocevar if grade else None,
    )


def totals_row(totals: PatientTotals) -> None:
    """The patient's de Vita, OMERACT and Hocevar totals and the OMERACT >= 2 flag."""
    m = st.columns(4)
    devita = totals.devita_total
    m[0].metric("de Vita total (0-12)", devita if devita is not None else "incomplete")
    m[1].metric("OMERACT max (0-3)", or_dash(totals.omeract_max))
    if 0 < totals.omeract_graded < totals.glands_scored:  # a maximum over some glands only
        m[1].caption(
            f"over the {totals.omeract_graded} of {totals.glands_scored} glands graded so far"
        )
    m[2].metric("Hocevar total (0-48)", or_dash(totals.hocevar_total))
    m[3].metric(
        "Any gland OMERACT ≥ 2", OMERACT_FLAG[totals.omeract_positive],
        help="OMERACT B-mode grade 2 or 3 in at least one gland (Doppler grades do not count); "
        "open while a gland is ungraded and none so far is.",
    )  # fmt: skip


def render() -> None:
    """The page: patient and rater, the four glands, then the patient's totals."""
    labels_store = reader_store()
    account = require_account()
    st.title("Patients")
    dataset = page_dataset()
    patient, rater = choose_patient(labels_store, dataset, account)
    reading = choose_reading(labels_store, dataset, rater)
    glands = patient_glands(labels_store, dataset.id, patient, rater, reading)
    scores = []
    for col, gland in zip(st.columns(4), glands, strict=False):
        with col:
            gland_card(labels_store, gland, rater)
        score = gland_score(gland)
        if score is not None:
            scores.append(score)
    with stop_on_error():
        totals = patient_totals(scores)
    st.divider()
    totals_row(totals)
    st.info(CAVEAT)


render()
