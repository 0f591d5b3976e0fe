"""Live: the scanner's video segmented as it plays, and Capture into a dataset.

The scanner's video reaches the browser the way a capture card gives it (a UVC camera); the
browser sends it over WebRTC (streamlit-webrtc, aiortc on the server) and every frame goes
through the zero-shot segmenter. The outline, the area, the grade and the frames per second are
burned into the returned video; Capture stores the frame on screen, with its prediction, in a
chosen dataset (patient, gland and side asked once per session). Capture only adds frames: blind
rounds, labels and statuses are untouched.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import streamlit as st

from sgus_core.errors import SgusError
from sgus_core.live import CaptureDetails, LiveSegmenter, capture_frame
from sgus_core.vocabulary import GLANDS, SIDES
from sgus_ui.state import account_store, model_names, pipeline, settings, store
from sgus_ui.text import plain

if TYPE_CHECKING:
    from sgus_core.live import LiveResult

NEW_DATASET = "(a new dataset)"
# No STUN or TURN server: the scanner PC and the app talk directly (same machine or LAN), and
# nothing is fetched from outside.
ICE_SERVERS: dict[str, Any] = {"iceServers": []}


class LatestFrame:
    """What the video thread hands the page: the latest processed frame, or the latest error.

    The WebRTC callback runs in another thread without the page's session, so the two share
    only this object (a lock around two fields)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._result: LiveResult | None = None
        self._error: str | None = None

    def put(self, result: LiveResult) -> None:
        with self._lock:
            self._result, self._error = result, None

    def fail(self, message: str) -> None:
        with self._lock:
            self._error = message

    def get(self) -> tuple[LiveResult | None, str | None]:
        with self._lock:
            return self._result, self._error


def video_callback(live: LiveSegmenter, latest: LatestFrame):
    """The per-frame callback: RGB in, the overlay out; a frame that fails comes back as it was
    and the page shows why (the video never stops on one bad frame)."""
    import av

    def callback(frame: av.VideoFrame) -> av.VideoFrame:
        image = frame.to_ndarray(format="rgb24")
        try:
            result = live.process(image)
        except SgusError as exc:
            latest.fail(str(exc))
            return frame
        latest.put(result)
        return av.VideoFrame.from_ndarray(result.overlay, format="rgb24")

    return callback


def session_live(model: str) -> tuple[LiveSegmenter, LatestFrame]:
    """This session's live segmenter (rebuilt when the model or the spacing changes) and the
    frame holder its video thread fills."""
    segmenter, grader = pipeline(model)
    details: CaptureDetails | None = st.session_state.get("live_details")
    spacing = details.spacing_mm if details else None
    key = (segmenter.name, spacing)
    if st.session_state.get("live_key") != key:
        st.session_state["live_key"] = key
        st.session_state["live_segmenter"] = LiveSegmenter(segmenter, grader, spacing_mm=spacing)
        st.session_state["live_latest"] = LatestFrame()
    return st.session_state["live_segmenter"], st.session_state["live_latest"]


def details_form() -> CaptureDetails | None:
    """Patient, gland, side (and spacing) asked once per session; shown as one line after."""
    details: CaptureDetails | None = st.session_state.get("live_details")
    if details is not None:
        shown = f", {details.spacing_mm} mm/px" if details.spacing_mm else ""
        line, change = st.columns([5, 1])
        line.markdown(
            f"Scanning **{plain(details.patient)}**, {details.gland} {details.side}{shown}"
        )
        if change.button("Change", key="live_change"):
            del st.session_state["live_details"]
            st.rerun()
        return details
    with st.form("live_details_form"):
        st.markdown("**Who is being scanned?** (asked once for this session)")
        cols = st.columns(4)
        patient = cols[0].text_input("Patient ID", key="live_patient")
        gland = cols[1].selectbox("Gland", GLANDS, key="live_gland")
        side = cols[2].selectbox("Side", SIDES, key="live_side")
        spacing = cols[3].number_input(
            "mm per pixel (optional)",
            min_value=0.0,
            max_value=9.99,
            value=0.0,
            step=0.005,
            format="%.3f",
            key="live_spacing",
            help="For areas in mm²; 0 when unknown.",
        )
        if st.form_submit_button("Start the session"):
            chosen = CaptureDetails(patient.strip(), str(gland), str(side), spacing or None)
            try:
                chosen.check()
            except SgusError as exc:
                st.error(str(exc))
                return None
            st.session_state["live_details"] = chosen
            st.rerun()
    return None


def capture_target() -> str:
    """The dataset Capture writes into: an existing one or a new one by name."""
    names = [d.name for d in store().list_datasets()]
    current = st.session_state.get("dataset")
    options = [*names, NEW_DATASET]
    choice = st.selectbox(
        "Capture into",
        options,
        index=options.index(current) if current in names else 0,
        key="live_dataset",
    )
    if choice != NEW_DATASET:
        return choice
    return st.text_input("New dataset name", value="live captures", key="live_new_dataset")


@st.fragment(run_every=1.0)
def live_panel(latest: LatestFrame, dataset: str, details: CaptureDetails | None) -> None:
    """Once a second: the latest frame's figures, and the Capture button."""
    result, error = latest.get()
    if error:
        st.warning(f"Last frame not segmented: {error}")
    if result is None:
        st.caption("Waiting for video: press START and allow the camera (the capture card).")
        return
    pred = result.prediction
    cols = st.columns(2)
    area = f"{pred.area_mm2:.1f} mm²" if pred.area_mm2 is not None else f"{pred.area_px:,} px"
    cols[0].metric("Gland area", area)
    cols[1].metric("de Vita (model)", "–" if pred.grade is None else str(pred.grade))
    cols[0].metric("Frames per second", f"{result.fps:.1f}")
    cols[1].metric("Frames", f"{result.index + 1:,}")
    doppler = result.vascular_caption()
    if doppler:
        st.caption(doppler)
    writer = account_store()
    if not writer.account.can_label:
        st.info("Your account can watch but not capture: capturing needs a rater or admin account.")
        return
    if details is None:
        st.info("Say who is being scanned (above) to capture frames.")
        return
    if st.button("Capture", key="live_capture", type="primary", width="stretch"):
        graded = "" if pred.grade is None else f", de Vita {pred.grade} by the model"
        segmenter, _ = pipeline(st.session_state.get("live_model"))
        try:
            image_id, created = capture_frame(
                writer,
                dataset,
                result,
                details,
                segmenter=segmenter,
                data_dir=settings().data_dir,
                models_dir=settings().models_dir,
            )
        except SgusError as exc:
            st.session_state["live_message"] = ("error", str(exc))
        else:
            count = st.session_state.get("live_captured", 0) + created
            st.session_state["live_captured"] = count
            where = f"{plain(dataset)} as image {image_id}; {count} captured this session."
            st.session_state["live_message"] = (
                (
                    "success",
                    f"Captured frame {result.index + 1} (gland {area}{graded}) into {where}",
                )
                if created
                else ("info", f"This very frame (unchanged since) is already stored in {where}")
            )
    kind, message = st.session_state.get("live_message", (None, None))
    if kind is not None:  # kept across the panel's refreshes until the next capture
        {"success": st.success, "info": st.info, "error": st.error}[kind](message)


def main() -> None:
    from streamlit_webrtc import WebRtcMode, webrtc_streamer

    st.title("Live")
    st.caption(
        "The scanner's video (a capture card appears as a camera) segmented as it plays. "
        "Press START, choose the capture card if asked, and Capture the frames worth keeping."
    )
    names = model_names()
    if not names:
        st.error("No segmentation model in the models folder. Train one with `sgus train segment`.")
        st.stop()
    details = details_form()
    top = st.columns(2)
    with top[0]:
        model = st.selectbox("Model", names, key="live_model")
    with top[1]:
        dataset = capture_target()
    live, latest = session_live(model)
    video, panel = st.columns([3, 2])
    with video:
        try:
            webrtc_streamer(
                key="live",
                mode=WebRtcMode.SENDRECV,
                rtc_configuration=ICE_SERVERS,
                media_stream_constraints={"video": True, "audio": False},
                video_frame_callback=video_callback(live, latest),
                async_processing=True,
            )
        except (AttributeError, RuntimeError) as exc:  # no server session (a bare or test run)
            st.error(
                "The live video needs the app's own server (`sgus demo` or `sgus serve`) and "
                f"cannot start here: {exc}"
            )
    with panel:
        live_panel(latest, dataset, details)


main()
