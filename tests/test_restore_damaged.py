"""`sgus restore` of a damaged backup is one line and writes nothing (issue 13, item 9)."""

from __future__ import annotations

import gzip

import pytest

from sgus_cli.main import main
from sgus_core.store import LabelStore, NewImage


@pytest.fixture
def backup(tmp_path, monkeypatch, capsys):
    """A backup of a store with a dataset, an image and a rater."""
    monkeypatch.setenv("SGUS_DB_URL", f"sqlite:///{tmp_path / 'a.db'}")
    with LabelStore(f"sqlite:///{tmp_path / 'a.db'}") as store:
        ds = store.ensure_dataset("d", tmp_path)
        images = [
            NewImage(path=f"f{i}.png", content_hash=f"h{i}", width=4, height=4) for i in range(30)
        ]
        store.add_images(ds.id, images)
        store.ensure_rater("ana")
    path = tmp_path / "b.sgus.gz"
    assert main(["backup", "--out", str(path)]) == 0
    capsys.readouterr()
    monkeypatch.setenv("SGUS_DB_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    return path


def _restore_fails_in_one_line(path, tmp_path, capsys) -> str:
    assert main(["restore", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sgus restore: "), err
    with LabelStore(f"sqlite:///{tmp_path / 'empty.db'}") as store:
        assert not any(store.counts().values())  # nothing was written
    return err[0]


def test_a_truncated_backup_is_one_line(backup, tmp_path, capsys):
    data = backup.read_bytes()
    backup.write_bytes(data[: len(data) // 2])
    assert "damaged" in _restore_fails_in_one_line(backup, tmp_path, capsys)


def test_a_corrupt_row_is_one_line(backup, tmp_path, capsys):
    lines = gzip.decompress(backup.read_bytes()).decode().splitlines()
    lines[2] = lines[2][: len(lines[2]) // 2]  # a row cut in the middle of its JSON
    backup.write_bytes(gzip.compress("\n".join(lines).encode()))
    assert "damaged" in _restore_fails_in_one_line(backup, tmp_path, capsys)


def test_a_row_of_an_unknown_table_is_one_line(backup, tmp_path, capsys):
    lines = gzip.decompress(backup.read_bytes()).decode().splitlines()
    lines.insert(2, '{"t": "no_such_table", "r": {}}')
    backup.write_bytes(gzip.compress("\n".join(lines).encode()))
    assert "damaged" in _restore_fails_in_one_line(backup, tmp_path, capsys)
