"""The Annotate page's own waiting, measured in real Chromium: what a reader waits for after a
stroke, a grade click, Save and Next, on the demo data at 1400 x 900.

Usage (after the README's test command has installed Chromium and the dev packages)::

    .venv/bin/python scripts/bench_annotate.py [--frames 7] [--json]

Starts the app on a fresh two-patient demo store in a temporary folder, walks ``--frames``
frames (draw a stroke, pick a de Vita grade, Save & next), and prints the median and the 90th
percentile of each wait (seconds). A figure, not a test: the machine's load moves it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sgus_core.demo import ensure_demo
from sgus_core.settings import REPO_ROOT, load_settings
from sgus_core.store import LabelStore
from sgus_ui.app_server import CHROMIUM, CHROMIUM_ARGS, running_app

VIEWPORT = {"width": 1400, "height": 900}
POLL = 0.02


def _wait_change(read, before: str, timeout: float = 60.0) -> float:
    """Seconds until ``read()`` returns something other than ``before``."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            if read() != before:
                return time.perf_counter() - started
        except Exception:
            pass
        time.sleep(POLL)
    raise TimeoutError(f"nothing changed within {timeout} s (still {before!r})")


def _idle(page) -> None:
    """Wait until Streamlit's running indicator is gone."""
    page.wait_for_timeout(300)
    page.locator("[data-testid='stStatusWidget']").wait_for(state="detached", timeout=60_000)


def measure(url: str, frames: int) -> dict[str, list[float]]:
    """The waits of ``frames`` frames, by step."""
    from playwright.sync_api import sync_playwright

    waits: dict[str, list[float]] = {"load": [], "stroke": [], "grade": [], "save": [], "next": []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_context(viewport=VIEWPORT).new_page()
        started = time.perf_counter()
        page.goto(f"{url}/annotate")
        page.locator("canvas.upper-canvas").first.wait_for(timeout=120_000)
        _idle(page)
        waits["load"].append(time.perf_counter() - started)
        area = page.locator("[data-testid='stCaptionContainer']", has_text="Gland area").first
        place = page.locator("[data-testid='stMarkdownContainer']", has_text="in the queue").first
        for i in range(frames):
            _idle(page)
            canvas = page.locator("canvas.upper-canvas").first
            canvas.scroll_into_view_if_needed()
            page.wait_for_timeout(1000)  # the new frame's canvas has mounted its drawing layer
            box = canvas.bounding_box()
            bottom = min(box["y"] + box["height"], VIEWPORT["height"]) - 5
            before = area.inner_text()
            # A stroke down the left edge, top to bottom: it always adds pixels to the mask.
            x = box["x"] + 8 + 4 * i
            top = max(box["y"], 70) + 5  # below Streamlit's fixed header when scrolled
            page.mouse.move(x, top)
            page.mouse.down()
            page.mouse.move(x, bottom, steps=10)
            page.mouse.up()
            try:
                waits["stroke"].append(_wait_change(area.inner_text, before))
            except TimeoutError:
                page.screenshot(path=f"/tmp/bench_fail_{i}.png", full_page=True)
                raise
            _idle(page)
            # The second button group is de Vita's (the first is the pen's add / erase).
            devita = page.locator("[data-testid='stButtonGroup']").nth(1)
            grade = devita.locator("button", has_text="2").first
            grade.click()
            started = time.perf_counter()
            page.get_by_text("de Vita 2:", exact=False).first.wait_for(timeout=60_000)
            waits["grade"].append(time.perf_counter() - started)
            _idle(page)
            before_place = place.inner_text()
            page.locator("button", has_text="Save & next").click()
            started = time.perf_counter()
            label = before_place.split(" · ")[0]  # the confirmation names the frame saved
            page.get_by_text(f"Saved {label}:", exact=False).first.wait_for(timeout=60_000)
            waits["save"].append(time.perf_counter() - started)
            waits["next"].append(_wait_change(place.inner_text, before_place))
            page.locator("canvas.upper-canvas").first.wait_for(timeout=60_000)
            _idle(page)
        browser.close()
    return waits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--frames", type=int, default=7, metavar="N", help="at most 7 (the demo has 8)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: run the README's test command first.", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="sgus-bench-annotate-") as tmp:
        data = Path(tmp)
        env = {
            **os.environ,
            "SGUS_DATA_DIR": str(data),
            "SGUS_DB_URL": f"sqlite:///{data / 'sgus.db'}",
            "SGUS_MODELS_DIR": str(REPO_ROOT / "models"),
            "SGUS_APP_MODE": "demo",
        }
        settings = load_settings(env)
        with LabelStore(settings.db_url) as store:
            ensure_demo(store, settings, n_patients=2, with_predictions=False)
        with running_app(env, data / "streamlit.log") as url:
            waits = measure(url, max(1, min(args.frames, 7)))
    summary = {
        step: {
            "median_s": statistics.median(values),
            "p90_s": sorted(values)[max(0, int(round(0.9 * len(values))) - 1)],
            "n": len(values),
        }
        for step, values in waits.items()
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    names = {
        "load": "open Annotate -> canvas ready",
        "stroke": "stroke -> area updated",
        "grade": "grade click -> definition shown",
        "save": "Save & next -> confirmation",
        "next": "  then -> next frame shown",
    }
    print(f"{'step':34} {'median s':>9} {'p90 s':>7} {'n':>3}")
    for step, row in summary.items():
        print(f"{names[step]:34} {row['median_s']:9.2f} {row['p90_s']:7.2f} {row['n']:3d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
