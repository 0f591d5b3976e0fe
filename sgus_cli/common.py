"""What every ``sgus`` subcommand shares: the progress bar and the labels store."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any

from sgus_core.settings import Settings


@contextmanager
def progress_bar(description: str, *, enabled: bool = True):
    """Yield a ``progress(done, total)`` callback drawing a tqdm bar on a terminal."""
    show = enabled and sys.stderr.isatty()
    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if not show:
            return
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total, desc=description, unit="img", file=sys.stderr)
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()


def open_store(settings: Settings) -> Any:
    from sgus_core.store import LabelStore

    return LabelStore(settings.db_url)
