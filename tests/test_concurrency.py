"""Concurrent raters and crashes: every acknowledged save is kept, the store stays consistent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from sgus_core.imaging import encode_mask_png
from sgus_core.store import LabelStore, NewImage

SAVER = """
import sys
import numpy as np
from sgus_core.imaging import encode_mask_png
from sgus_core.store import LabelStore
store = LabelStore(sys.argv[1])
for i in range(int(sys.argv[3])):
    mask = (i % 65536 >> np.arange(16) & 1).astype(bool).reshape(4, 4)
    v = store.save_mask(1, sys.argv[2], encode_mask_png(mask), area_px=int(mask.sum()),
                        source="manual")
    print(v.id, flush=True)
"""


def _mask(n: int) -> tuple[bytes, int]:
    """The ``n``-th of the 65,536 distinct masks of the 4 x 4 px test frame (the bits of ``n``),
    as PNG bytes and its area."""
    mask = (n % 65536 >> np.arange(16) & 1).astype(bool).reshape(4, 4)
    return encode_mask_png(mask), int(mask.sum())


def _one_image(store, tmp_path, raters=("ana", "ben")):
    ds = store.ensure_dataset("d", tmp_path)
    for name in raters:
        store.ensure_rater(name)
    image_id, _ = store.add_image(
        ds.id, NewImage(path="a.png", content_hash="h", width=4, height=4)
    )
    return image_id


def test_many_threads_saving_at_once_keep_every_version(store, tmp_path):
    """16 threads x 20 saves on one image: the number of versions equals the number of saves."""
    image_id = _one_image(store, tmp_path)

    def work(worker: int) -> int:
        rater = ("ana", "ben")[worker % 2]
        stale = 0
        for i in range(20):
            parent = store.latest_masks(image_id).get(rater)
            png, area = _mask(worker * 20 + i)
            v = store.save_mask(
                image_id, rater, png, area_px=area, source="manual",
                parent_id=parent.id if parent else None,
            )  # fmt: skip
            stale += v.stale_parent
        return stale

    with ThreadPoolExecutor(16) as pool:
        stale = sum(pool.map(work, range(16)))
    history = store.mask_history(image_id)
    assert len(history) == 16 * 20
    assert len({m.png for m in history}) == 16 * 20
    assert stale > 0  # raters raced on the same parent and were told so


def test_two_tabs_saving_on_the_same_parent_are_both_kept_and_the_second_is_told(store, tmp_path):
    """A save on a parent that is no longer the newest is kept and marked stale."""
    image_id = _one_image(store, tmp_path)
    (base_png, _), (tab1_png, _), (tab2_png, _) = _mask(1), _mask(2), _mask(4)
    base = store.save_mask(image_id, "ana", base_png, area_px=1, source="manual")
    tab1 = store.save_mask(image_id, "ana", tab1_png, area_px=1, source="manual", parent_id=base.id)
    tab2 = store.save_mask(image_id, "ana", tab2_png, area_px=1, source="manual", parent_id=base.id)
    assert not tab1.stale_parent and tab2.stale_parent
    assert [m.png for m in store.mask_history(image_id)] == [base_png, tab1_png, tab2_png]


@pytest.mark.slow
def test_several_processes_saving_at_once_keep_every_version(store, tmp_path):
    """4 processes x 30 saves into one store: 120 versions, integrity check passes."""
    image_id = _one_image(store, tmp_path, raters=("p0", "p1", "p2", "p3"))
    assert image_id == 1
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SAVER, store.url, f"p{n}", "30"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    acknowledged = sum(len(p.communicate(timeout=180)[0].split()) for p in procs)
    assert all(p.returncode == 0 for p in procs)
    assert acknowledged == 120
    assert len(store.mask_history(image_id)) == 120
    assert store.integrity_ok()


@pytest.mark.slow
def test_a_save_loop_killed_midway_loses_no_acknowledged_save(tmp_path):
    """SIGKILL during saves leaves a consistent store holding every acknowledged version."""
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    with LabelStore(url) as store:
        _one_image(store, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-c", SAVER, url, "ana", "100000"], stdout=subprocess.PIPE, text=True
    )
    acknowledged: list[str] = []
    reader = threading.Thread(target=lambda: acknowledged.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    reader.join(timeout=5)
    assert len(acknowledged) >= 50
    with LabelStore(url) as store:
        assert store.integrity_ok()
        stored = {m.id for m in store.mask_history(1)}
        assert {int(a) for a in acknowledged} <= stored
        assert len(stored) <= len(acknowledged) + 1  # at most the one in flight


@pytest.fixture(scope="module")
def frames_folder(tmp_path_factory):
    """Six phantom patients (24 frames) with a labels CSV."""
    from sgus_core.synthesis.phantom import write_dataset

    folder = tmp_path_factory.mktemp("import-frames")
    write_dataset(folder, 6, 8_000)
    return folder


def _import_cmd(folder, url):
    code = "import sys; from sgus_cli.main import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "SGUS_DB_URL": url}
    args = ["import", str(folder), "--labels", str(folder / "labels.csv"), "--dataset", "d"]
    return [sys.executable, "-c", code, *args], env


@pytest.mark.slow
def test_several_imports_into_one_store_at_once_all_succeed(tmp_path, frames_folder):
    """Three `sgus import` processes of the same folder at once: all exit 0, each frame once."""
    url = f"sqlite:///{tmp_path / 'many.db'}"
    cmd, env = _import_cmd(frames_folder, url)
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    with LabelStore(url) as store:
        ds = store.require_dataset("d")
        assert len(store.list_images(ds.id)) == 24
        assert store.integrity_ok()


@pytest.mark.slow
def test_an_import_killed_midway_completes_when_run_again(tmp_path, frames_folder):
    """SIGKILL during an import leaves a consistent store; running it again finishes the job."""
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    cmd, env = _import_cmd(frames_folder, url)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.05)
        try:
            with LabelStore(url) as store:
                ds = store.get_dataset("d")
                if ds and store.list_images(ds.id):
                    break
        except Exception:  # the store may not exist yet
            continue
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with LabelStore(url) as store:
        assert store.integrity_ok()
        partial = len(store.list_images(store.require_dataset("d").id))
    assert partial < 24
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    with LabelStore(url) as store:
        ds = store.require_dataset("d")
        assert len(store.list_images(ds.id)) == 24
        assert len(store.latest_grades_for_dataset(ds.id, "imported")) == 24
