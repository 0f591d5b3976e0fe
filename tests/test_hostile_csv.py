"""Hostile and broken labels CSVs: every row is either taken or skipped with a reason."""

from __future__ import annotations

import csv
import io
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sgus_core.errors import ImportRowError
from sgus_core.transfer import read_labels_csv

COLUMNS = ["image", "mask", "patient", "gland", "side", "devita", "omeract", "rater", "spacing_mm"]


@pytest.fixture
def folder(tmp_path):
    """An import folder with one frame file and a file outside it."""
    root = tmp_path / "import"
    (root / "images").mkdir(parents=True)
    (root / "images" / "a.png").write_bytes(b"x")
    (tmp_path / "secret.png").write_bytes(b"x")
    return root


def _write(folder, rows, header=COLUMNS):
    path = folder / "labels.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (["images/a.png", "", "P1", "liver", "L", "1", "1", "", ""], "gland 'liver'"),
        (["images/a.png", "", "P1", "parotid", "X", "1", "1", "", ""], "side 'X'"),
        (["images/a.png", "", "P1", "parotid", "L", "7", "1", "", ""], "devita '7'"),
        (["images/a.png", "", "P1", "parotid", "L", "1", "two", "", ""], "omeract 'two'"),
        (["images/a.png", "", "P1", "parotid", "L", "1.5", "1", "", ""], "not a grade"),
        (["images/a.png", "", "P1", "parotid", "L", "1", "1", "", "-3"], "spacing_mm"),
        (
            ["../secret.png", "", "P1", "parotid", "L", "1", "1", "", ""],
            "outside the import folder",
        ),
        (["/etc/passwd", "", "", "", "", "", "", "", ""], "is absolute"),
        (["images/none.png", "", "", "", "", "", "", "", ""], "does not exist"),
        (["", "", "", "", "", "", "", "", ""], "image column is empty"),
        (["images/a.png", "masks/none.png", "", "", "", "", "", "", ""], "mask file"),
        (["images/a.png", "", "", "", "", "", "", "", "", "surplus"], "more cells"),
    ],
)
def test_each_bad_row_gets_a_specific_reason(folder, row, reason):
    """A bad row is skipped with a message that names what is wrong."""
    good, bad = read_labels_csv(folder, _write(folder, [row]), "imported")
    assert good == {}
    assert len(bad) == 1 and reason in bad[0][1], bad


def test_symlink_out_of_the_folder_is_refused(folder):
    """A symlink inside the folder that points outside it is refused like ../ paths."""
    os.symlink(folder.parent / "secret.png", folder / "images" / "link.png")
    _, bad = read_labels_csv(folder, _write(folder, [["images/link.png"] + [""] * 8]), "imported")
    assert "outside the import folder" in bad[0][1]


def test_missing_optional_columns_and_aliases_are_accepted(folder):
    """Only `image` is required; PG/SMG and left/right spellings are understood."""
    path = _write(folder, [["images/a.png", "smg", "left"]], header=["image", "gland", "side"])
    good, bad = read_labels_csv(folder, path, "dr-x")
    row = next(iter(good.values()))
    assert bad == [] and (row.gland, row.side, row.rater) == ("submandibular", "L", "dr-x")


def test_a_csv_without_an_image_column_is_refused_whole(folder):
    """A CSV lacking the image column cannot be imported at all, with a message saying so."""
    with pytest.raises(ImportRowError, match="no 'image' column"):
        read_labels_csv(folder, _write(folder, [["x"]], header=["picture"]), "imported")


def test_odd_unicode_file_names_are_fine(folder):
    """Accented, non-Latin and space-containing names import like any other."""
    name = "images/Parotide gauche – Ž 患者.png"
    (folder / name).write_bytes(b"x")
    good, bad = read_labels_csv(folder, _write(folder, [[name] + [""] * 8]), "imported")
    assert bad == [] and len(good) == 1


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.lists(st.text(max_size=12), min_size=0, max_size=11), max_size=8))
def test_arbitrary_rows_are_taken_or_skipped_never_crash(folder, rows):
    """Whatever the cells, each data row is either a good row or a skipped one with a reason."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    path = folder / "fuzz.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    try:
        good, bad = read_labels_csv(folder, path, "imported")
    except ImportRowError as exc:  # an unreadable CSV as a whole is a reported failure too
        assert "CSV" in str(exc) or "csv" in str(exc)
        return
    assert all(reason for _, reason in bad)
    assert all(row.image.is_relative_to(folder.resolve()) for row in good.values())
