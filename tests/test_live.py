"""Live scanning in the core and on the command line: one frame at a time (outline, area, grade,
frames per second), ``sgus stream`` on a video file and on an MJPEG stream served on 127.0.0.1,
and Capture into a dataset through the permission layer."""

from __future__ import annotations

import csv
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import ndimage

from sgus_cli.main import main
from sgus_core.auth import Account, AccountStore
from sgus_core.bench.live import run_live_bench, write_phantom_video
from sgus_core.errors import PermissionDenied, SgusError, SourceError
from sgus_core.inference import processing
from sgus_core.inference.registry import load_pipeline
from sgus_core.live import CSV_COLUMNS, CaptureDetails, LiveSegmenter, capture_frame, run_stream
from sgus_core.settings import REPO_ROOT
from sgus_core.synthesis.phantom import generate_frame

MODELS = REPO_ROOT / "models"


@pytest.fixture(scope="module")
def models():
    """The shipped default segmenter and grader."""
    return load_pipeline(MODELS)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A 12-frame 320x240 phantom sweep."""
    return write_phantom_video(
        tmp_path_factory.mktemp("live") / "sweep.mp4", frames=12, size=(320, 240)
    )


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_region_with_holes_filled_matches_scipy():
    """The OpenCV post-processing keeps exactly the largest 4-connected region with its holes
    filled, as scipy's label + binary_fill_holes did, on 200 random masks."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        noise = cv2.GaussianBlur(
            rng.random((90, 120)).astype(np.float32), (0, 0), rng.uniform(0.5, 4)
        )
        probability = (noise - noise.min()) / (np.ptp(noise) + 1e-9)
        threshold = float(rng.uniform(0.3, 0.8))
        labels, count = ndimage.label(probability > threshold)
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        expected = ndimage.binary_fill_holes(labels == np.argmax(sizes)) if count else labels > 0
        assert np.array_equal(processing.postprocess(probability, threshold=threshold), expected)


def test_a_live_frame_gets_an_outline_area_caption_and_fps(models):
    segmenter, grader = models
    clock = Clock()
    live = LiveSegmenter(segmenter, grader, spacing_mm=0.1, clock=clock)
    image = generate_frame(1).image
    rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    first = live.process(rgb)
    clock.now = 0.04
    second = live.process(image)  # grey works as well as RGB
    assert first.prediction.area_px > 1000 and second.prediction.area_px > 1000
    assert first.prediction.area_mm2 == pytest.approx(first.prediction.area_px * 0.01)
    assert first.overlay.shape == (*image.shape, 3)
    outline = np.all(first.overlay == (255, 64, 64), axis=-1)
    assert outline.sum() > 100  # the red outline is drawn
    assert first.fps == 0.0 and second.fps == pytest.approx(25.0)
    assert first.graded and not second.graded
    assert second.prediction.grade == first.prediction.grade  # carried until the next grading


def test_a_doppler_frame_shows_its_vascular_fraction_and_a_grey_one_none(models):
    """Live on a power Doppler frame: the share of the gland that carries flow, as on Browse;
    on the same frame without colour there is no Doppler line."""
    from sgus_core.synthesis.doppler import add_doppler

    segmenter, grader = models
    live = LiveSegmenter(segmenter, grader, spacing_mm=0.1, clock=Clock())
    made = generate_frame(1)
    grey = live.process(made.image)
    assert grey.vascular_caption() is None
    doppler = add_doppler(made.image, made.mask, made.fov, np.random.default_rng(0), grade=3)
    result = live.process(doppler.rgb)
    text = result.vascular_caption()
    assert text is not None and text.startswith("Doppler: vascular fraction")
    shown = float(text.split("fraction ")[1].split(" %")[0])
    mask = result.prediction.mask
    truth = 100 * (doppler.signal & mask).sum() / mask.sum()
    assert shown == pytest.approx(truth, abs=3.0)
    assert live.process(cv2.cvtColor(made.image, cv2.COLOR_GRAY2RGB)).vascular_caption() is None


def test_the_field_of_view_is_found_once_a_second_and_on_a_new_size(models, monkeypatch):
    from sgus_core.live import segmenter as live_module

    calls = []
    real = live_module.detect_fov
    monkeypatch.setattr(live_module, "detect_fov", lambda g: calls.append(g.shape) or real(g))
    clock = Clock()
    live = LiveSegmenter(models[0], clock=clock)
    image = generate_frame(2).image
    for i in range(10):
        clock.now = i * 0.04  # 25 frames/s for 0.36 s
        live.process(image)
    assert len(calls) == 1
    clock.now = 1.5
    live.process(image)
    live.process(cv2.resize(image, (320, 240)))
    assert len(calls) == 3


def test_the_grader_runs_every_fifth_frame(models):
    segmenter, grader = models
    live = LiveSegmenter(segmenter, grader, grade_every=5)
    image = generate_frame(3).image
    graded = [live.process(image).graded for _ in range(11)]
    assert graded == [i % 5 == 0 for i in range(11)]


@pytest.mark.parametrize("shape", [(8, 8), (10, 200, 3)])
def test_a_frame_too_small_is_refused_with_a_message(models, shape):
    live = LiveSegmenter(models[0])
    with pytest.raises(SourceError, match="too small"):
        live.process(np.zeros(shape, np.uint8))


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _frame_count(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def test_stream_of_a_video_file_writes_the_overlay_video_and_a_row_per_frame(
    models, video, tmp_path
):
    report = run_stream(str(video), tmp_path, LiveSegmenter(*models))
    rows = _read_csv(tmp_path / "frames.csv")
    assert report.frames == 12 and report.stopped_by == "end of source"
    assert list(rows[0]) == list(CSV_COLUMNS) and len(rows) == 12
    assert [float(r["time_s"]) for r in rows][:3] == pytest.approx([0.0, 0.04, 0.08])
    assert all(int(r["area_px"]) > 0 for r in rows)
    assert all(r["grade"] in "0123" and r["grade"] for r in rows)
    assert _frame_count(tmp_path / "overlay.mp4") == 12


class _Interrupting(LiveSegmenter):
    """Ctrl+C pressed while the fifth frame is processed."""

    def process(self, image):
        if self.frames == 4:
            raise KeyboardInterrupt
        return super().process(image)


def test_ctrl_c_keeps_everything_written_so_far(models, video, tmp_path):
    report = run_stream(str(video), tmp_path, _Interrupting(models[0]))
    assert report.stopped_by == "Ctrl+C" and report.frames == 4
    assert len(_read_csv(tmp_path / "frames.csv")) == 4
    assert _frame_count(tmp_path / "overlay.mp4") == 4  # the MP4 is closed properly


def test_stream_stops_after_the_seconds_asked(models, video, tmp_path):
    clock = Clock()

    def progress(frames: int, seconds: float) -> None:
        clock.now += 0.5

    report = run_stream(
        str(video), tmp_path, LiveSegmenter(models[0]), seconds=2, progress=progress, clock=clock
    )
    assert report.frames == 4 and report.stopped_by == "2 s limit"


def test_stream_stops_when_asked_to(models, video, tmp_path):
    stop = threading.Event()
    stop.set()
    report = run_stream(str(video), tmp_path, LiveSegmenter(models[0]), stop=stop)
    assert report.frames == 0 and report.stopped_by == "stop requested"


@pytest.fixture
def mjpeg_url():
    """An MJPEG stream (multipart/x-mixed-replace, 30 phantom frames at 25 frames/s) served on
    127.0.0.1, the way an IP camera or a capture box's web stream sends it."""
    jpegs = [
        cv2.imencode(".jpg", cv2.resize(generate_frame(s).image, (320, 240)))[1].tobytes()
        for s in range(3)
    ]

    class Stream(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            try:
                for i in range(30):
                    body = jpegs[i % len(jpegs)]
                    self.wfile.write(
                        b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                        + str(len(body)).encode()
                        + b"\r\n\r\n"
                        + body
                        + b"\r\n"
                    )
                    time.sleep(0.04)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Stream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
    server.shutdown()
    server.server_close()


def test_sgus_stream_on_a_local_mjpeg_stream(mjpeg_url, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["stream", "--source", mjpeg_url, "--out", str(out), "--spacing-mm", "0.1"]) == 0
    printed = capsys.readouterr().out
    rows = _read_csv(out / "frames.csv")
    assert len(rows) >= 25  # a frame or two may be lost at the stream's start
    assert f"segmented {len(rows)} frames of stream {mjpeg_url}" in printed
    assert float(rows[-1]["time_s"]) > 0.5  # wall-clock time for a live source
    assert all(
        float(r["area_mm2"]) == pytest.approx(int(r["area_px"]) * 0.01, abs=0.01) for r in rows
    )
    assert _frame_count(out / "overlay.mp4") == len(rows)


def test_sgus_stream_of_a_video_with_a_time_limit_and_no_grade(video, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["stream", "--source", str(video), "--out", str(out), "--no-grade"]) == 0
    rows = _read_csv(out / "frames.csv")
    assert len(rows) == 12 and all(r["grade"] == "" and r["p0"] == "" for r in rows)
    assert "stopped by end of source" in capsys.readouterr().out


@pytest.mark.parametrize(
    "source, message",
    [
        ("no-such-video.mp4", "No such video file, device or stream address"),
        ("http://127.0.0.1:9/none.mjpg", "Cannot open stream"),
    ],
)
def test_sgus_stream_of_a_source_that_cannot_be_read_is_one_line(source, message, tmp_path, capsys):
    assert main(["stream", "--source", source, "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sgus stream: ") and message in err and "\n" not in err


def test_a_file_that_is_not_a_video_is_one_line(tmp_path, capsys):
    bogus = tmp_path / "notes.mp4"
    bogus.write_bytes(b"not a video at all")
    assert main(["stream", "--source", str(bogus), "--out", str(tmp_path / "o")]) == 1
    assert "sgus stream: " in capsys.readouterr().err


@pytest.fixture
def capture_setup(store, tmp_path, models):
    """A store with the rater rita and the viewer vic, and one processed live frame."""
    store.ensure_rater("rita", actor="admin")
    store.ensure_rater("vic", role="viewer", actor="admin")
    result = LiveSegmenter(*models).process(
        cv2.cvtColor(generate_frame(5).image, cv2.COLOR_GRAY2RGB)
    )
    return store, result


def _capture(writer, result, segmenter, tmp_path, dataset="clinic live", **details):
    chosen = {"patient": "LIVE-7", "gland": "parotid", "side": "R", "spacing_mm": 0.08} | details
    return capture_frame(
        writer,
        dataset,
        result,
        CaptureDetails(**chosen),
        segmenter=segmenter,
        data_dir=tmp_path / "data",
        models_dir=MODELS,
    )


def test_capture_stores_the_frame_and_its_prediction_under_the_person(
    capture_setup, models, tmp_path
):
    store, result = capture_setup
    writer = AccountStore(store, Account("rita", "rater"))
    image_id, created = _capture(writer, result, models[0], tmp_path)
    assert created
    image = store.get_image(image_id)
    assert (image.patient, image.gland, image.side, image.spacing_mm) == (
        "LIVE-7",
        "parotid",
        "R",
        0.08,
    )
    path = store.image_path(image)
    assert path.is_file() and path.is_relative_to(tmp_path / "data" / "captures")
    assert image.meta["captured"] == "live"
    prediction = store.latest_prediction(image_id, models[0].name)
    assert prediction.area_px == result.prediction.area_px
    assert prediction.grade == result.prediction.grade
    actors = {row.actor for row in store.audit_log(limit=20)}
    assert "rita" in actors and "model" not in actors
    again = _capture(writer, result, models[0], tmp_path)  # the same frame twice: one image
    assert again == (image_id, False)
    assert list((tmp_path / "data" / "captures").rglob("*.png")) == [path]
    other = LiveSegmenter(models[0]).process(generate_frame(6).image)
    assert _capture(writer, other, models[0], tmp_path)[1]
    assert len(store.list_images(store.require_dataset("clinic live").id)) == 2


def test_capture_into_an_existing_dataset_writes_into_its_folder(capture_setup, models, tmp_path):
    store, result = capture_setup
    root = tmp_path / "study-folder"
    root.mkdir()
    store.ensure_dataset("study", root, actor="admin")
    writer = AccountStore(store, Account("rita", "rater"))
    image = store.get_image(_capture(writer, result, models[0], tmp_path, dataset="study")[0])
    assert store.image_path(image).parent == root / "captures"


def test_a_viewer_captures_nothing(capture_setup, models, tmp_path):
    store, result = capture_setup
    with pytest.raises(PermissionDenied):
        _capture(AccountStore(store, Account("vic", "viewer")), result, models[0], tmp_path)
    assert store.get_dataset("clinic live") is None
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "details, message",
    [
        ({"patient": " "}, "patient's ID"),
        ({"gland": "thyroid"}, "Gland must be one of"),
        ({"side": "X"}, "Side must be one of"),
        ({"spacing_mm": -1.0}, "spacing"),
    ],
)
def test_capture_with_incomplete_details_says_which(
    capture_setup, models, tmp_path, details, message
):
    store, result = capture_setup
    with pytest.raises(SgusError, match=message):
        _capture(
            AccountStore(store, Account("rita", "rater")), result, models[0], tmp_path, **details
        )
    assert store.get_dataset("clinic live") is None


def test_bench_live_reports_the_median_of_its_rounds():
    result = run_live_bench(MODELS, frames=6, size=(320, 240), rounds=2)
    assert result["size"] == [320, 240] and len(result["rounds"]) == 2
    assert result["frames_per_s"] > 0 and result["target_frames_per_s"] == 24.5
    assert result["meets_target"] == (result["frames_per_s"] >= 24.5)


@pytest.fixture
def live_app(one_patient_demo):
    """The Live page in demo mode on a one-patient demo store with a tiny untrained segmenter."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO_ROOT / "streamlit_app.py"), default_timeout=120)
    at.switch_page("pages/live.py").run()
    assert not at.exception, at.exception
    return at


def test_the_live_page_asks_who_is_scanned_once(live_app):
    at = live_app
    assert at.title[0].value == "Live"
    at.button[0].click().run()  # "Start the session" with no patient ID
    assert any("patient's ID" in e.value for e in at.error)
    at.text_input(key="live_patient").input("P42")
    at.selectbox(key="live_side").select("R")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert any("Scanning **P42**, parotid R" in m.value for m in at.markdown)
    assert "live_patient" not in [t.key for t in at.text_input]  # not asked again
    assert any("Waiting for video" in c.value for c in at.caption)
