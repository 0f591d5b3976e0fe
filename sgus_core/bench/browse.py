"""Benchmark of the Browse page on a large store (``sgus bench-browse``).

Builds a store of ``n_images`` frames (a few distinct phantom frames on disk, each registered under
its own content hash, with grades, masks and statuses), builds every thumbnail once, then times
what one Browse page does: the filtered, sorted page query plus reading its thumbnails from the
disk cache. Reports medians over repeats, in milliseconds.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from sgus_core import imaging
from sgus_core.browse import ensure_thumbnail
from sgus_core.store import ImageFilter, LabelStore, NewImage

DISTINCT_FRAMES = 16
PAGE_SIZE = 24
REPEATS = 15


def _median_ms(run: Callable[[], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 1)


def build_large_store(work_dir: Path, n_images: int) -> tuple[LabelStore, int]:
    """A store of ``n_images`` labelled frames under ``work_dir``; returns it and the dataset id."""
    from sgus_core.synthesis.phantom import generate_frame

    frames_dir = work_dir / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    sources = []
    for seed in range(DISTINCT_FRAMES):
        frame = generate_frame(50_000 + seed)
        path = frames_dir / f"{seed:02d}_{frame.name}.png"  # names repeat across seeds
        cv2.imwrite(str(path), frame.image)
        sources.append((path.name, frame))
    store = LabelStore(f"sqlite:///{work_dir / 'large.db'}")
    ds = store.ensure_dataset("large", frames_dir)
    store.ensure_rater("reference")
    store.ensure_rater("rater-b")
    rng = np.random.default_rng(0)
    new = []
    for i in range(n_images):
        name, frame = sources[i % DISTINCT_FRAMES]
        new.append(
            NewImage(
                path=name,
                content_hash=f"{i:064x}",
                width=frame.image.shape[1],
                height=frame.image.shape[0],
                patient=f"P{i // 4:05d}",
                gland=frame.gland,
                side=frame.side,
                spacing_mm=frame.spacing_mm,
                fov=frame.fov,
            )
        )
    ids = [image_id for image_id, _ in store.add_images(ds.id, new)]
    masks = {name: imaging.encode_mask_png(frame.mask) for name, frame in sources}
    for i, image_id in enumerate(ids):
        name, frame = sources[i % DISTINCT_FRAMES]
        store.save_labels(
            image_id,
            "reference",
            mask_png=masks[name],
            area_px=int(frame.mask.sum()),
            devita=int(rng.integers(0, 4)),
            actor="bench",
        )
    return store, ds.id


def run_browse_bench(n_images: int = 10_000, work_dir: Path | None = None) -> dict[str, float]:
    """Build the large store and time Browse pages; returns the figures (ms are medians)."""
    with tempfile.TemporaryDirectory(prefix="sgus-browse-") as tmp:
        root = Path(work_dir or tmp)
        start = time.perf_counter()
        store, dataset_id = build_large_store(root, n_images)
        build_s = time.perf_counter() - start
        cache = imaging.ThumbnailCache(root / "thumbnails")
        start = time.perf_counter()
        offset = 0
        while True:
            rows, total = store.browse(ImageFilter(dataset_id=dataset_id), offset=offset, limit=500)
            for row in rows:
                ensure_thumbnail(store, cache, row)
            offset += len(rows)
            if not rows or offset >= total:
                break
        thumbs_s = time.perf_counter() - start

        def page(flt: ImageFilter, page_no: int, sort: str = "patient") -> None:
            rows, _ = store.browse(flt, sort=sort, offset=page_no * PAGE_SIZE, limit=PAGE_SIZE)
            for row in rows:
                ensure_thumbnail(store, cache, row).read_bytes()

        everything = ImageFilter(dataset_id=dataset_id)
        filtered = ImageFilter(dataset_id=dataset_id, gland="parotid", grade=2, rater="reference")
        result = {
            "images": n_images,
            "build_store_s": round(build_s, 1),
            "build_thumbnails_s": round(thumbs_s, 1),
            "first_page_ms": _median_ms(lambda: page(everything, 0)),
            "middle_page_ms": _median_ms(lambda: page(everything, n_images // PAGE_SIZE // 2)),
            "filtered_page_ms": _median_ms(lambda: page(filtered, 0)),
            "sorted_by_grade_page_ms": _median_ms(lambda: page(everything, 3, "grade")),
        }
        store.close()
    return result
