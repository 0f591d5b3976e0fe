"""Shared fixtures: a temporary labels store, and the store URL the suite runs against.

``SGUS_TEST_PG_URL`` (set by the test command when it has started a throw-away PostgreSQL
cluster) makes the store tests run against that server as well as SQLite.
"""

from __future__ import annotations

import os
import uuid

import pytest

# Before anything imports TensorFlow: the Live page's WebRTC stack (pylibsrtp) crashes the process
# when it is first imported after TensorFlow (streamlit_app.py imports it first for the same reason).
import streamlit_webrtc  # noqa: F401
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, generate_uid

from sgus_core.store import LabelStore


def _engines() -> list[str]:
    engines = ["sqlite"]
    if os.environ.get("SGUS_TEST_PG_URL"):
        engines.append("postgres")
    return engines


@pytest.fixture(params=_engines())
def store(request, tmp_path):
    """An empty, migrated labels store (SQLite file in tmp_path, or a fresh PostgreSQL database)."""
    if request.param == "sqlite":
        labels = LabelStore(f"sqlite:///{tmp_path / 'labels.db'}")
        yield labels
        labels.close()
        return
    from sqlalchemy import create_engine, text

    admin_url = os.environ["SGUS_TEST_PG_URL"]
    name = f"sgus_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    labels = LabelStore(admin_url.rsplit("/", 1)[0] + f"/{name}")
    yield labels
    labels.close()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}"'))
    admin.dispose()


@pytest.fixture
def sqlite_store(tmp_path):
    """An empty, migrated SQLite labels store in tmp_path."""
    labels = LabelStore(f"sqlite:///{tmp_path / 'labels.db'}")
    yield labels
    labels.close()


def _write_dicom(path, frames, **tags):
    """Write a real DICOM file (ultrasound, uncompressed) with pydicom."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = UltrasoundImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "SECRET-42"
    ds.StudyDate = "20260101"
    if frames is not None:
        ds.Rows, ds.Columns = frames.shape[-2:]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        if frames.ndim == 3:
            ds.NumberOfFrames = frames.shape[0]
        ds.PixelData = frames.tobytes()
    for key, value in tags.items():
        setattr(ds, key, value)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def write_dicom():
    """``write_dicom(path, frames, **tags)``: a real uncompressed ultrasound DICOM file written by
    pydicom (with a patient name, id and date, to check they never reach the store)."""
    return _write_dicom


def _tiny_segmenter_models(root):
    """``root/models`` holding an untrained tiny U-Net ``tiny`` as the default segmenter (what
    the page tests run Predict and the canvas with); returns the folder and the model's card."""
    import json

    from sgus_core.nets import build_model

    models = root / "models"
    models.mkdir()
    build_model("unet", input_shape=(64, 96, 1), base_filters=4, depth=2).save(
        models / "tiny.keras"
    )
    card = {"name": "tiny", "task": "segment", "architecture": "unet", "input_shape": [64, 96, 1]}
    (models / "tiny.json").write_text(json.dumps(card))
    (models / "default.json").write_text(json.dumps({"segment": "tiny"}))
    return models, card


@pytest.fixture(scope="session")
def tiny_segmenter_models():
    """``tiny_segmenter_models(root)``: ``root/models`` holding an untrained tiny U-Net as the
    default segmenter; returns the folder and the model's card."""
    return _tiny_segmenter_models


@pytest.fixture
def one_patient_demo(tmp_path, monkeypatch, tiny_segmenter_models):
    """The app's environment for one test: a one-patient demo store (its labels and simulated
    raters) under tmp_path and a models folder holding a tiny untrained U-Net; returns the
    settings."""
    from sgus_core.demo import ensure_demo
    from sgus_core.settings import load_settings

    models, _ = tiny_segmenter_models(tmp_path)
    monkeypatch.setenv("SGUS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SGUS_MODELS_DIR", str(models))
    monkeypatch.setenv("SGUS_DB_URL", f"sqlite:///{tmp_path / 'sgus.db'}")
    settings = load_settings()
    with LabelStore(settings.db_url) as store:
        ensure_demo(store, settings, n_patients=1)
    return settings
