"""One settings object, read from ``SGUS_*`` environment variables.

| variable           | default                         | meaning                          |
|--------------------|---------------------------------|----------------------------------|
| SGUS_DATA_DIR      | ``<repo>/data``                 | demo data, thumbnails, SQLite db |
| SGUS_MODELS_DIR    | ``<repo>/models``               | model weights and model cards    |
| SGUS_DB_URL        | ``sqlite:///<data>/sgus.db``    | SQLAlchemy URL of the store      |
| SGUS_MAX_PIXELS    | ``40000000``                    | frames larger than this are refused before decoding |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MAX_PIXELS = 40_000_000


@dataclass(frozen=True)
class Settings:
    """Where data, models and the labels store live."""

    data_dir: Path
    models_dir: Path
    db_url: str
    max_pixels: int = DEFAULT_MAX_PIXELS

    @property
    def thumbnail_dir(self) -> Path:
        """Folder of the on-disk thumbnail cache."""
        return self.data_dir / "thumbnails"

    @property
    def demo_dir(self) -> Path:
        """Folder of the generated demo dataset's frames."""
        return self.data_dir / "demo"


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read the settings from ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ
    data_dir = Path(env.get("SGUS_DATA_DIR") or REPO_ROOT / "data").expanduser().resolve()
    models_dir = Path(env.get("SGUS_MODELS_DIR") or REPO_ROOT / "models").expanduser().resolve()
    db_url = env.get("SGUS_DB_URL") or f"sqlite:///{data_dir / 'sgus.db'}"
    max_pixels = int(env.get("SGUS_MAX_PIXELS") or DEFAULT_MAX_PIXELS)
    return Settings(data_dir=data_dir, models_dir=models_dir, db_url=db_url, max_pixels=max_pixels)
