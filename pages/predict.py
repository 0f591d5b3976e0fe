"""Predict: the model's outline, probability map, area and grade for one image, or a whole dataset."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.express as px
import streamlit as st

from sgus_core import imaging
from sgus_core.browse import load_frame
from sgus_core.errors import PermissionDenied, SgusError
from sgus_core.inference import segment_frames
from sgus_core.inference.dataset import predict_dataset
from sgus_core.inference.pipeline import segment_prompted
from sgus_core.study.scoring import DEVITA_GRADES
from sgus_core.study.visibility import require_visible
from sgus_ui.prompt_box import box_prompt
from sgus_ui.state import (
    account_store,
    current_dataset,
    model_names,
    pipeline,
    prompted_segmenter,
    reader_store,
    settings,
)
from sgus_ui.text import count
from sgus_ui.widgets import mask_check, stop_on_error

if TYPE_CHECKING:
    import numpy as np

    from sgus_core.inference import Prediction
    from sgus_core.store import Dataset, LabelStore

MODEL_COLOUR = (255, 64, 64)
HEAT_MAP_WIDTH = 400  # cells a row of the probability heat map
# Inferno, with its first stop (#000004) made plain black: Streamlit's chart frontend takes the
# colours #000001-#000029 for placeholders of its theme and repaints them (0 showed violet).
HEAT_SCALE = ["#000000", *px.colors.sequential.Inferno[1:]]
TRUTH_COLOUR = (0, 200, 255)


def _show_progress(bar: Any, done: int, total: int) -> None:
    bar.progress(done / max(total, 1), text=f"{done} of {total} frames")


def choose_model() -> tuple[str, str | None]:
    """The model and where the image comes from (None: neither chosen); stops when the models folder has no model."""
    names = model_names()
    if not names:
        st.error("No segmentation model in the models folder. Train one with `sgus train segment`.")
        st.stop()
    top = st.columns([2, 3])
    model = top[0].selectbox("Model", names, key="pred_model")
    source = top[1].segmented_control(
        "Image",
        ["from the dataset", "upload a file"],
        default="from the dataset",
        key="pred_source",
    )
    return model, source


def uploaded_frame() -> tuple[imaging.Frame | None, np.ndarray | None, str]:
    """An uploaded frame, optionally its gland mask to check the model against, and the file's
    stem (the downloads are named after it)."""
    upload = st.file_uploader("Frame (PNG, JPEG, BMP, TIFF, DICOM)", key="pred_upload")
    mask_upload = st.file_uploader("Its gland mask, to check the model (optional)", key="pred_mask")
    if upload is None:
        return None, None, ""
    truth = None
    with tempfile.TemporaryDirectory() as tmp, stop_on_error():
        path = Path(tmp) / (Path(upload.name).name or "upload")
        path.write_bytes(upload.getvalue())
        frame = imaging.read_image(path, max_pixels=settings().max_pixels)
    if mask_upload is not None:  # a mask that does not fit is reported; the prediction stays
        with tempfile.TemporaryDirectory() as tmp:
            mask_path = Path(tmp) / (Path(mask_upload.name).name or "mask")
            mask_path.write_bytes(mask_upload.getvalue())
            try:
                truth = imaging.read_mask_file(mask_path, frame.pixels.shape)
            except SgusError as exc:
                st.warning(f"{exc} The prediction below is not checked against a mask.")
    return frame, truth, path.stem


def dataset_frame(labels_store: LabelStore, dataset: Dataset) -> tuple[imaging.Frame, str]:
    """A frame chosen from the dataset and its file's stem; stops when the dataset is empty or
    the frame unreadable."""
    images = labels_store.list_images(dataset.id)
    if not images:
        st.info("This dataset has no images yet.")
        st.stop()
    chosen = st.selectbox(
        "Frame", images, format_func=lambda i: f"{i.label} ({i.path})", key="pred_image"
    )
    try:
        require_visible(labels_store, chosen.id)
    except PermissionDenied as exc:
        st.info(str(exc))
        st.stop()
    with stop_on_error():
        frame = load_frame(labels_store, chosen)
    if frame.spacing_mm is None and chosen.spacing_mm is not None:  # spacing from the import CSV
        frame = replace(frame, spacing_mm=chosen.spacing_mm)
    return frame, Path(chosen.path).stem


def predict_whole_dataset(dataset: Dataset, model: str) -> None:
    """The expander that runs the model on every frame of the dataset without a prediction and
    stores the results under the signed-in account; a viewer is told why she has no button (and
    the core would refuse her anyway)."""
    writer = account_store()
    with st.expander(f"Predict the whole dataset *{dataset.name}*"):
        if not writer.account.can_label:
            st.info(
                "Your account can view predictions but not store them: storing the model's "
                "predictions of a dataset needs a rater or administrator account."
            )
            return
        if not st.button("Run on every frame without a prediction", key="pred_all"):
            return
        bar = st.progress(0.0, text="Predicting...")
        try:
            done, skipped = predict_dataset(
                writer.store,  # every stored prediction counts, hidden ones too
                dataset.name,
                settings().models_dir,
                model=model,
                progress=lambda d, t: _show_progress(bar, d, t),
                writer=writer,
            )
        except SgusError as exc:
            st.error(str(exc))
        else:
            st.success(
                f"{count(done, 'frame')} predicted and stored."
                + (f" {len(skipped)} unreadable." if skipped else "")
            )


def outline_view(frame: imaging.Frame, prediction: Prediction, truth: np.ndarray | None) -> None:
    """The frame with the model's outline (and the user's mask), then the probability map."""
    opacity = st.slider("Overlay opacity", 0.0, 1.0, 0.3, 0.05, key="pred_opacity")
    layers = [(prediction.mask, MODEL_COLOUR)]
    if truth is not None:
        layers.append((truth, TRUTH_COLOUR))
    st.image(imaging.draw_overlay(frame.shown(), layers, fill_alpha=opacity), width="stretch",
             caption="red: model" + (" · blue: your mask" if truth is not None else ""))  # fmt: skip
    # At most HEAT_MAP_WIDTH cells a row (a full-size map is a megabyte of JSON per rerun), on
    # Plotly's own theme: Streamlit's replaces the scale, and 0 must read as black, not pink.
    step = max(1, -(-prediction.probability.shape[1] // HEAT_MAP_WIDTH))
    heat = px.imshow(prediction.probability[::step, ::step], color_continuous_scale=HEAT_SCALE,
                     zmin=0, zmax=1)  # fmt: skip
    # The title above the chart, not in it: Plotly's toolbar covered a title inside.
    st.markdown("**Gland probability** (0 to 1, the network's output before the threshold)")
    heat.update_layout(margin=dict(l=0, r=0, t=10, b=0), height=360)
    heat.update_xaxes(showticklabels=False).update_yaxes(showticklabels=False)
    st.plotly_chart(heat, key="pred_heat", theme=None)


def area_and_grade(frame: imaging.Frame, prediction: Prediction) -> None:
    """The gland area and, with a grader, the predicted de Vita grade and its probabilities;
    no grade for a frame that is no ultrasound image or where the model found no gland."""
    odd = frame.unlike_ultrasound()
    unsure = prediction.confidence_warning()
    for warning in (odd, unsure):
        if warning:
            st.warning(warning)
    # One metric the column's full width (two side by side were cut to "12,3..." on a laptop).
    if prediction.area_mm2 is not None:
        st.metric("Gland area", f"{prediction.area_mm2:.0f} mm²")
        st.caption(f"{prediction.area_px:,} pixels at the frame's pixel spacing")
    else:
        st.metric("Gland area", f"{prediction.area_px:,} px",
                  help="The frame does not give its pixel spacing, so no area in mm².")  # fmt: skip
    if prediction.grade_probabilities and prediction.grade is not None:
        if odd or not prediction.mask.any():
            why = "this is no ultrasound frame" if odd else "the model found no gland to grade"
            st.info(f"No grade: {why}.")
            return
        st.metric("Predicted de Vita grade", prediction.grade)
        st.caption(DEVITA_GRADES[prediction.grade])
        if unsure:
            st.caption("Read inside an outline the model is unsure of: check the outline first.")
        bars = px.bar(x=[f"grade {g}" for g in range(4)], y=list(prediction.grade_probabilities),
                      labels={"x": "", "y": "probability"}, range_y=[0, 1], height=240)  # fmt: skip
        st.plotly_chart(bars, key="pred_grades")


def contour_downloads(prediction: Prediction, stem: str) -> None:
    """The contour's points and the downloads of contour and mask, named after the frame's file
    (``<stem>_contour.txt``, ``<stem>_mask.png``: several downloads do not overwrite each other)."""
    points = pd.DataFrame(prediction.contour, columns=["x", "y"])
    st.markdown(f"#### Contour ({len(points)} points)")
    st.dataframe(points, height=200, hide_index=True, key="pred_points")
    st.download_button("Download contour (x y)", points.to_csv(sep=" ", index=False, header=False),
                       file_name=f"{stem}_contour.txt", key="pred_download", on_click="ignore")  # fmt: skip
    st.download_button(
        "Download mask (PNG)",
        imaging.encode_mask_png(prediction.mask),
        file_name=f"{stem}_mask.png",
        key="pred_mask_download",
        on_click="ignore",
    )


def render() -> None:
    """The page: model and image on top, the outline on the left, the figures on the right."""
    labels_store = reader_store()
    dataset = current_dataset()
    st.title("Predict")
    model, source = choose_model()
    segmenter, grader = pipeline(model)
    frame, truth, stem = None, None, ""
    if source == "upload a file":
        frame, truth, stem = uploaded_frame()
    elif dataset is not None:
        frame, stem = dataset_frame(labels_store, dataset)
        predict_whole_dataset(dataset, model)
    if frame is None:
        st.stop()
    prompted = prompted_segmenter(model)  # the chosen model when it takes prompts
    prompt = box_prompt(frame) if prompted is not None else None
    used = prompted if prompt is not None and prompted is not None else segmenter
    with stop_on_error():
        if prompt is not None:
            prediction = segment_prompted(used, frame, prompt, grader=grader)
        else:
            (prediction,) = segment_frames(segmenter, [frame], grader=grader)
    left, right = st.columns([3, 2])
    with left:
        outline_view(frame, prediction, truth)
    with right:
        area_and_grade(frame, prediction)
        if truth is not None:
            mask_check(frame, prediction, truth)
        contour_downloads(prediction, stem)
    st.caption(
        f"Model {prediction.model} · runtime {used.runtime} · FOV {prediction.fov.as_tuple()}"
    )


render()
