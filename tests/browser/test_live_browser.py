"""The Live page in real Chromium with a fake camera: Chromium plays a phantom video the test
writes as its camera (as a scanner's capture card appears), the page segments it over WebRTC,
and Capture stores the frame on screen, with its prediction, in a new dataset."""

from __future__ import annotations

import cv2
import pytest

from sgus_core.store import LabelStore
from sgus_core.synthesis.phantom import generate_frame
from sgus_ui.app_server import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser


def write_y4m(path, images, size=(640, 480), fps=25):
    """A raw YUV4MPEG2 video (what Chromium's fake capture device plays) of grey frames."""
    width, height = size
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for grey in images:
            bgr = cv2.cvtColor(cv2.resize(grey, size), cv2.COLOR_GRAY2BGR)
            out.write(b"FRAME\n" + cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


@pytest.fixture
def camera_page(browser, tmp_path):
    """A page of a Chromium whose camera plays a 30-frame phantom video, camera allowed."""
    video = write_y4m(
        tmp_path / "probe.y4m", [generate_frame(s).image for s in range(3) for _ in range(10)]
    )
    chromium = browser.browser_type.launch(
        executable_path=str(CHROMIUM),
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, permissions=["camera"])
    yield context.new_page()
    context.close()
    chromium.close()


def test_live_segments_the_camera_and_captures_a_frame(app_url, app_db_url, camera_page):
    page = camera_page
    page.goto(f"{app_url}/live")
    page.get_by_role("heading", name="Live").wait_for(timeout=60_000)
    page.get_by_label("Patient ID").fill("LIVE-01")
    page.get_by_role("button", name="Start the session").click()
    page.get_by_text("Scanning", exact=False).wait_for(timeout=60_000)  # a rerun on a busy server
    page.get_by_role("combobox", name="Capture into").click()
    page.get_by_role("option", name="(a new dataset)").click()
    page.get_by_label("New dataset name").wait_for(timeout=30_000)
    page.frame_locator("iframe[title*='webrtc']").get_by_role("button", name="START").click(
        timeout=60_000
    )
    page.get_by_text("Frames per second").wait_for(timeout=90_000)  # frames came back segmented
    page.wait_for_timeout(1500)
    page.get_by_role("button", name="Capture").click()
    page.get_by_text("Captured frame", exact=False).wait_for(timeout=60_000)
    with LabelStore(app_db_url) as store:
        dataset = store.require_dataset("live captures")
        [image] = store.list_images(dataset.id)
        assert (image.patient, image.gland) == ("LIVE-01", "parotid")
        # The camera sends 640x480; WebRTC's encoder scales a stream down (480x360, ...) when
        # the CPU is busy (two test workers on two cores): the frame is stored as it arrived.
        assert image.width * 3 == image.height * 4 and 320 <= image.width <= 640
        assert store.image_path(image).is_file()
        prediction = store.latest_prediction(image.id)
        assert prediction is not None and prediction.area_px > 1000
