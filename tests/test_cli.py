"""The `sgus` command: every docs/CLI.md form exists, unfinished ones say so and exit 2."""

from __future__ import annotations

import subprocess
import sys

from sgus_cli.main import build_parser, main

CONTRACT = (
    "demo",
    "import",
    "export",
    "predict",
    "train",
    "evaluate",
    "serve",
    "user",
    "backup",
    "restore",
    "bench",
)


def test_every_contract_subcommand_exists():
    """Each subcommand named in docs/CLI.md is known to the parser."""
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(CONTRACT) <= set(sub.choices)


def test_unknown_model_is_named_with_the_available_ones(tmp_path, monkeypatch, capsys):
    """`sgus predict --model nope` fails in one line listing the models there are."""
    import cv2
    import numpy as np

    monkeypatch.setenv("SGUS_MODELS_DIR", str(tmp_path / "models"))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "unet.json").write_text("{}")
    cv2.imwrite(str(tmp_path / "f.png"), np.zeros((40, 40), np.uint8))
    assert (
        main(["predict", str(tmp_path / "f.png"), "--out", str(tmp_path / "o"), "--model", "nope"])
        == 1
    )
    err = capsys.readouterr().err
    assert "No model named 'nope'" in err and "unet" in err


def test_help_works_from_the_installed_entry_point():
    """`sgus --help` lists the commands."""
    out = subprocess.run(
        [sys.executable, "-m", "sgus_cli.main", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "import" in out and "export" in out


def test_import_of_a_missing_folder_fails_with_one_line(tmp_path, monkeypatch, capsys):
    """A missing folder gives a one-line reason and exit code 1."""
    monkeypatch.setenv("SGUS_DB_URL", f"sqlite:///{tmp_path / 'x.db'}")
    assert main(["import", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a folder" in err[0]


def test_user_add_then_backup_and_restore(tmp_path, monkeypatch, capsys):
    """`sgus user add` reads the password from stdin; backup and restore round-trip the store."""
    import io

    monkeypatch.setenv("SGUS_DB_URL", f"sqlite:///{tmp_path / 'a.db'}")
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert main(["user", "add", "boss", "--role", "admin"]) == 0
    assert "added boss (admin)" in capsys.readouterr().out
    assert main(["backup", "--out", str(tmp_path / "b.gz")]) == 0
    monkeypatch.setenv("SGUS_DB_URL", f"sqlite:///{tmp_path / 'b.db'}")
    assert main(["restore", str(tmp_path / "b.gz")]) == 0
    assert main(["restore", str(tmp_path / "b.gz")]) == 1
    assert "not empty" in capsys.readouterr().err


def test_serve_without_an_admin_account_says_how_to_make_one(tmp_path, monkeypatch, capsys):
    """`sgus serve` on a store without accounts refuses with the command to run."""
    monkeypatch.setenv("SGUS_DB_URL", f"sqlite:///{tmp_path / 'a.db'}")
    assert main(["serve"]) == 1
    assert "sgus user add" in capsys.readouterr().err
