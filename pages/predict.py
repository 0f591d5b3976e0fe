"""Predict: the model's outline, probability map, area and grade for one image, or a whole dataset."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import plotly.express as px
import streamlit as st

from sgus_core import imaging
from sgus_core.browsing import load_frame
from sgus_core.errors import SgusError
from sgus_core.inference import segment_frames
from sgus_core.metrics import mask_agreement
from sgus_core.prediction_service import ensure_registered, predict_dataset
from sgus_core.scoring import DEVITA_GRADES
from sgus_ui.state import current_dataset, model_names, pipeline, settings, store

labels_store = store()
dataset = current_dataset()
st.title("Predict")
names = model_names()
if not names:
    st.error("No segmentation model in the models folder. Train one with `sgus train segment`.")
    st.stop()
top = st.columns([2, 3])
model = top[0].selectbox("Model", names, key="pred_model")
source = top[1].segmented_control(
    "Image", ["from the dataset", "upload a file"], default="from the dataset", key="pred_source"
)
segmenter, grader = pipeline(model)

frame = None
truth = None
if source == "upload a file":
    upload = st.file_uploader("Frame (PNG, JPEG, BMP, TIFF, DICOM)", key="pred_upload")
    mask_upload = st.file_uploader("Its gland mask, to check the model (optional)", key="pred_mask")
    if upload is not None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / (Path(upload.name).name or "upload")
            path.write_bytes(upload.getvalue())
            try:
                frame = imaging.read_image(path, max_pixels=settings().max_pixels)
                if mask_upload is not None:
                    mask_path = Path(tmp) / "mask.png"
                    mask_path.write_bytes(mask_upload.getvalue())
                    truth = imaging.read_mask_file(mask_path, frame.pixels.shape)
            except SgusError as exc:
                st.error(str(exc))
                st.stop()
elif dataset is not None:
    images = labels_store.list_images(dataset.id)
    if not images:
        st.info("This dataset has no images yet.")
        st.stop()
    chosen = st.selectbox(
        "Frame", images, format_func=lambda i: f"{i.label} ({i.path})", key="pred_image"
    )
    try:
        frame = load_frame(labels_store, chosen)
    except SgusError as exc:
        st.error(str(exc))
        st.stop()
    with st.expander(f"Predict the whole dataset *{dataset.name}*"):
        if st.button("Run on every frame without a prediction", key="pred_all"):
            bar = st.progress(0.0, text="Predicting...")
            try:
                ensure_registered(labels_store, settings().models_dir, model)
                done, skipped = predict_dataset(
                    labels_store,
                    dataset.name,
                    settings().models_dir,
                    model=model,
                    progress=lambda d, t: bar.progress(d / max(t, 1), text=f"{d} of {t} frames"),
                )
            except SgusError as exc:
                st.error(str(exc))
            else:
                st.success(
                    f"{done} frames predicted and stored."
                    + (f" {len(skipped)} unreadable." if skipped else "")
                )
if frame is None:
    st.stop()

(prediction,) = segment_frames(segmenter, [frame], grader=grader)
left, right = st.columns([3, 2])
with left:
    opacity = st.slider("Overlay opacity", 0.0, 1.0, 0.3, 0.05, key="pred_opacity")
    layers = [(prediction.mask, (255, 64, 64))]
    if truth is not None:
        layers.append((truth, (0, 200, 255)))
    st.image(imaging.draw_overlay(frame.pixels, layers, fill_alpha=opacity), width="stretch",
             caption="red: model" + (" · blue: your mask" if truth is not None else ""))  # fmt: skip
    heat = px.imshow(prediction.probability, color_continuous_scale="inferno", zmin=0, zmax=1)
    heat.update_layout(margin=dict(l=0, r=0, t=30, b=0), title="Gland probability", height=360)
    heat.update_xaxes(showticklabels=False).update_yaxes(showticklabels=False)
    st.plotly_chart(heat, key="pred_heat")
with right:
    cols = st.columns(2)
    cols[0].metric("Gland area", f"{prediction.area_px:,} px")
    if prediction.area_mm2 is not None:
        cols[1].metric("Area", f"{prediction.area_mm2:.0f} mm²")
    if prediction.grade_probabilities:
        st.metric("Predicted de Vita grade", prediction.grade)
        st.caption(DEVITA_GRADES[prediction.grade])
        bars = px.bar(x=[f"grade {g}" for g in range(4)], y=list(prediction.grade_probabilities),
                      labels={"x": "", "y": "probability"}, range_y=[0, 1], height=240)  # fmt: skip
        st.plotly_chart(bars, key="pred_grades")
    if truth is not None:
        check = mask_agreement(truth, prediction.mask, spacing_mm=frame.spacing_mm)
        st.markdown("#### Check against your mask")
        st.dataframe(
            pd.DataFrame(
                {
                    "figure": ["Dice", "IoU", "sensitivity", "specificity", "accuracy"],
                    "value": [
                        check.dice,
                        check.iou,
                        check.recall,
                        check.specificity,
                        check.accuracy,
                    ],
                }
            ).round(3),
            hide_index=True,
            key="pred_check",
        )
    points = pd.DataFrame(prediction.contour, columns=["x", "y"])
    st.markdown(f"#### Contour ({len(points)} points)")
    st.dataframe(points, height=200, hide_index=True, key="pred_points")
    st.download_button("Download contour (x y)", points.to_csv(sep=" ", index=False, header=False),
                       file_name="contour.txt", key="pred_download")  # fmt: skip
    st.download_button(
        "Download mask (PNG)",
        imaging.encode_mask_png(prediction.mask),
        file_name="mask.png",
        key="pred_mask_download",
    )
st.caption(
    f"Model {prediction.model} · runtime {segmenter.runtime} · FOV {prediction.fov.as_tuple()}"
)
