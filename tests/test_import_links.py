"""Import never follows a link out of the folder it was given (issue 13, item 9)."""

from __future__ import annotations

import cv2
import numpy as np

from sgus_core.store import LabelStore
from sgus_core.transfer import import_folder


def test_a_symlink_leaving_the_folder_is_refused(tmp_path):
    outside = tmp_path / "private"
    outside.mkdir()
    cv2.imwrite(str(outside / "secret.png"), np.full((64, 64), 200, np.uint8))
    folder = tmp_path / "study"
    folder.mkdir()
    cv2.imwrite(str(folder / "frame.png"), np.full((64, 64), 100, np.uint8))
    (folder / "link.png").symlink_to(outside / "secret.png")
    with LabelStore(f"sqlite:///{tmp_path / 's.db'}") as store:
        report = import_folder(store, folder)
        ds = store.require_dataset("study")
        assert [i.path for i in store.list_images(ds.id)] == ["frame.png"]
    assert any("link.png" in where and "outside the folder" in why for where, why in report.skipped)
