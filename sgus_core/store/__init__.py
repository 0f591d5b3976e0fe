"""The labels store: every mask, grade, status and prediction with who, when and which version.

The only code that speaks SQL. One small public facade, :class:`LabelStore`, over areas that each
own one kind of record:

* ``datasets``: datasets and images; ``accounts``: raters, roles and sign-in attempts;
* ``labels``: mask versions, grades and statuses (append-only; "latest" = newest per rater);
* ``models``: registered models and their predictions; ``rounds``: study rounds;
* ``browse``: the Browse page's filtered, sorted pages; ``audit``: the audit log and checks;
* ``engine`` (URL, migrations, write transactions), ``schema`` (tables), ``records`` (values).

SQLite by default, PostgreSQL for multi-site studies (``SGUS_DB_URL``).
"""

from __future__ import annotations

from sgus_core.store.accounts import AccountArea
from sgus_core.store.audit import AuditArea
from sgus_core.store.browse import SORT_KEYS, BrowseArea
from sgus_core.store.datasets import DatasetArea
from sgus_core.store.engine import current_revision, head_revision
from sgus_core.store.labels import LabelArea
from sgus_core.store.models import ModelArea
from sgus_core.store.records import (
    AuditEntry,
    Blinding,
    BrowseRow,
    Dataset,
    Grade,
    ImageFilter,
    ImageRecord,
    MaskVersion,
    ModelRecord,
    NewImage,
    PredictionRecord,
    Rater,
    StatusEvent,
    StudyRound,
)
from sgus_core.store.rounds import RoundArea


class LabelStore(DatasetArea, AccountArea, LabelArea, ModelArea, RoundArea, BrowseArea, AuditArea):
    """Repository over one labels store. Thread-safe: share one per process.

    Args:
        url: SQLAlchemy URL (``sqlite:///path.db`` or ``postgresql+psycopg://...``).
        migrate_schema: run the migrations on open (the default).
    """

    def __enter__(self) -> LabelStore:
        return self


def open_store(url: str | None = None) -> LabelStore:
    """Open (and migrate) the store at ``url`` or at the configured ``SGUS_DB_URL``."""
    if url is None:
        from sgus_core.settings import load_settings

        url = load_settings().db_url
    return LabelStore(url)


__all__ = [
    "SORT_KEYS",
    "AuditEntry",
    "Blinding",
    "BrowseRow",
    "Dataset",
    "Grade",
    "ImageFilter",
    "ImageRecord",
    "LabelStore",
    "MaskVersion",
    "ModelRecord",
    "NewImage",
    "PredictionRecord",
    "Rater",
    "StatusEvent",
    "StudyRound",
    "current_revision",
    "head_revision",
    "open_store",
]
