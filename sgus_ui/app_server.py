"""A real Streamlit server of the app on a free local port, for browser tests and the Annotate
browser benchmark (``scripts/bench_annotate.py``): the same launch as ``sgus demo``, on a demo
store in a folder of its own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sgus_core.errors import SgusError

CHROMIUM = Path(os.environ.get("SGUS_CHROMIUM", "/usr/bin/chromium"))
# Flags for a closed network and a root user: no sandbox, no background traffic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_app(env: dict[str, str], log_path: Path, *, start_timeout: float = 90) -> Iterator[str]:
    """Run the app (``python -m sgus_ui.launch``) with ``env`` until the block ends; yields its
    URL once its health check answers.

    Raises:
        SgusError: the server did not answer within ``start_timeout`` seconds (the log's end is
            in the message).
    """
    port = free_port()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "sgus_ui.launch",
                "--server.address", "127.0.0.1", "--server.port", str(port),
                "--server.headless", "true", "--browser.gatherUsageStats", "false",
            ],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + start_timeout
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SgusError(
                            f"streamlit did not start: {log_path.read_text()[-2000:]}"
                        ) from None
                    time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
