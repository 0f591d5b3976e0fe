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


class StageBars:
    """``progress(stage, done, total, logs)`` drawing one tqdm bar (with its ETA) per stage of a
    training run ("features", "fold 2/5", "on every frame" ...), validation figures beside it;
    silent unless standard error is a terminal."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.show = enabled and sys.stderr.isatty()
        self.stage: str | None = None
        self.bar: Any = None

    def __call__(self, stage: str, done: int, total: int, logs: dict) -> None:
        if not self.show:
            return
        if stage != self.stage:
            self.close()
            from tqdm import tqdm

            unit = "img" if stage == "features" else "epoch"
            self.bar = tqdm(total=total, desc=stage, unit=unit, file=sys.stderr)
            self.stage = stage
        self.bar.total = total
        self.bar.n = done
        shown = {k: f"{v:.3f}" for k, v in logs.items() if k.startswith("val_")}
        if shown:
            self.bar.set_postfix(shown, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
