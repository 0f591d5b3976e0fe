"""The `sgus` command: every docs/CLI.md form exists, unfinished ones say so and exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

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


def test_stopping_sgus_serve_stops_the_server(tmp_path):
    """`sgus serve` becomes the server (the same process), so stopping the command, as a service
    manager or `kill` does, stops the app too; a child server used to keep answering."""
    import os
    import signal
    import time
    import urllib.request

    from sgus_ui.app_server import free_port

    env = {**os.environ, "SGUS_DB_URL": f"sqlite:///{tmp_path / 's.db'}",
           "SGUS_DATA_DIR": str(tmp_path / "data")}  # fmt: skip
    sgus = [sys.executable, "-m", "sgus_cli.main"]
    subprocess.run([*sgus, "user", "add", "ada", "--role", "admin"], input="pw-ada-1234\n",
                   text=True, env=env, check=True, capture_output=True)  # fmt: skip
    port = free_port()
    health = f"http://127.0.0.1:{port}/_stcore/health"
    proc = subprocess.Popen([*sgus, "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(health, timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "did not start"
                time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        with pytest.raises(OSError):
            urllib.request.urlopen(health, timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
