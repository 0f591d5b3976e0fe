"""The labels store's tables (SQLAlchemy Core), the current shape of the schema.

History is append-only: mask versions, grades, status changes, predictions and the audit log only
ever get new rows. Each schema change ships as a numbered migration under ``migrations/versions``;
``tests/test_store.py`` checks that migrating an empty database gives exactly these tables.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

from sgus_core.errors import StoreError

metadata = MetaData()


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every engine (SQLite hands back naive datetimes)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None


def text_problem(value: str, max_length: int | None) -> str | None:
    """Why the store would not keep ``value`` as text, or ``None``: a NUL character (PostgreSQL
    refuses it) or more than ``max_length`` characters (SQLite would keep them, PostgreSQL not)."""
    if "\x00" in value:
        return "contains a NUL character (\\x00)"
    if max_length is not None and len(value) > max_length:
        return f"has {len(value):,} characters, more than the {max_length} it may hold"
    return None


def fit_text(value: str, max_length: int | None) -> str:
    """``value`` made to obey the text rules (for rows written before they held): each NUL
    character becomes U+FFFD, and a value too long is cut to ``max_length`` characters, its last
    one an ellipsis."""
    fitted = value.replace("\x00", "\ufffd")
    if max_length is not None and len(fitted) > max_length:
        fitted = fitted[: max_length - 1] + "\u2026"
    return fitted


WRITING: ContextVar[bool] = ContextVar("sgus_store_writing", default=False)
"""True inside the store's write transactions (``engine.write_transaction`` sets it)."""


class TextRules:
    """Shared by the text column types: every value bound in a write transaction is checked
    against the same rules on every engine before it reaches the database. A lookup outside one
    is refused only for a NUL character (PostgreSQL cannot take it even in a query); a lookup by
    a value too long for its column just finds nothing, as no stored value is that long."""

    what: str
    max_length: int | None

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, str):
            problem = text_problem(value, self.max_length if WRITING.get() else None)
            if problem is not None:
                raise StoreError(
                    f"The {self.what} {problem}: the labels store keeps no such value."
                )
        return value


class CheckedString(TextRules, TypeDecorator[str]):
    """``VARCHAR(length)`` whose values are checked alike on SQLite and PostgreSQL."""

    impl = String
    cache_ok = True

    def __init__(self, length: int, what: str) -> None:
        super().__init__(length)
        self.what = what
        self.max_length = length


class CheckedText(TextRules, TypeDecorator[str]):
    """``TEXT`` (no length limit) without NUL characters, on every engine."""

    impl = Text
    cache_ok = True

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what
        self.max_length = None


datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", CheckedString(200, "dataset name"), nullable=False, unique=True),
    Column("root_path", CheckedText("folder path"), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

raters = Table(
    "raters",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", CheckedString(200, "account name"), nullable=False, unique=True),
    Column("role", CheckedString(20, "role"), nullable=False, server_default="rater"),
    Column("password_hash", CheckedText("password hash")),
    Column("disabled", Boolean, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime(), nullable=False),
)

images = Table(
    "images",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("dataset_id", ForeignKey("datasets.id"), nullable=False),
    Column("path", CheckedText("file path"), nullable=False),
    Column("content_hash", CheckedString(64, "content hash"), nullable=False),
    Column("frame_index", Integer, nullable=False, server_default="0"),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("patient", CheckedString(200, "patient id")),
    Column("gland", CheckedString(20, "gland")),
    Column("side", CheckedString(1, "side")),
    Column("spacing_mm", Float),
    Column("fov_x", Integer),
    Column("fov_y", Integer),
    Column("fov_width", Integer),
    Column("fov_height", Integer),
    Column("meta", JSON),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("dataset_id", "content_hash", "frame_index", name="uq_images_content"),
    Index("ix_images_dataset_patient", "dataset_id", "patient"),
)

rounds = Table(
    "rounds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", CheckedString(200, "round name"), nullable=False, unique=True),
    Column("dataset_id", ForeignKey("datasets.id"), nullable=False),
    Column("blind", Boolean, nullable=False, server_default="0"),
    Column("shuffled", Boolean, nullable=False, server_default="0"),
    Column("repeat_of", ForeignKey("rounds.id")),
    Column("settings", JSON),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("closed_at", UTCDateTime()),
)

round_images = Table(
    "round_images",
    metadata,
    Column("round_id", ForeignKey("rounds.id"), primary_key=True),
    Column("image_id", ForeignKey("images.id"), primary_key=True),
)

round_raters = Table(
    "round_raters",
    metadata,
    Column("round_id", ForeignKey("rounds.id"), primary_key=True),
    Column("rater_id", ForeignKey("raters.id"), primary_key=True),
)

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", CheckedString(200, "model name"), nullable=False, unique=True),
    Column("task", CheckedString(20, "task"), nullable=False),
    Column("architecture", CheckedString(100, "architecture"), nullable=False),
    Column("path", CheckedText("file path"), nullable=False),
    Column("card", JSON),
    Column("created_at", UTCDateTime(), nullable=False),
)

mask_versions = Table(
    "mask_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("image_id", ForeignKey("images.id"), nullable=False),
    Column("rater_id", ForeignKey("raters.id"), nullable=False),
    Column("round_id", ForeignKey("rounds.id")),
    Column("source", CheckedString(20, "mask source"), nullable=False),
    Column("parent_id", ForeignKey("mask_versions.id")),
    Column("model_id", ForeignKey("models.id")),
    Column("png", LargeBinary, nullable=False),
    Column("area_px", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_mask_versions_image_rater", "image_id", "rater_id", "id"),
)

grades = Table(
    "grades",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("image_id", ForeignKey("images.id"), nullable=False),
    Column("rater_id", ForeignKey("raters.id"), nullable=False),
    Column("round_id", ForeignKey("rounds.id")),
    Column("devita", Integer),
    Column("omeract", Integer),
    Column("doppler", Integer),  # OMERACT Doppler 2022 vascularity 0-3 (migration 0006)
    Column("hocevar", JSON),
    Column("comment", CheckedText("comment")),
    Column("confidence", Integer),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_grades_image_rater", "image_id", "rater_id", "id"),
)

status_events = Table(
    "status_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("image_id", ForeignKey("images.id"), nullable=False),
    Column("rater_id", ForeignKey("raters.id"), nullable=False),
    Column("round_id", ForeignKey("rounds.id")),
    Column("status", CheckedString(20, "status"), nullable=False),
    Column("reason", CheckedText("reason")),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_status_image_rater", "image_id", "rater_id", "id"),
)

predictions = Table(
    "predictions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("image_id", ForeignKey("images.id"), nullable=False),
    Column("model_id", ForeignKey("models.id"), nullable=False),
    Column("png", LargeBinary, nullable=False),
    Column("area_px", Integer, nullable=False),
    Column("area_mm2", Float),
    Column("grade", Integer),
    Column("grade_probabilities", JSON),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_predictions_image", "image_id", "id"),
)

login_attempts = Table(
    "login_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", CheckedString(200, "sign-in name"), nullable=False),
    Column("success", Boolean, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Index("ix_login_attempts_name_at", "name", "at"),
)

sign_ins = Table(  # open sign-ins of `sgus serve`: a browser tab resumes one after a reload
    "sign_ins",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", CheckedString(64, "sign-in token hash"), nullable=False, unique=True),
    Column("rater_id", ForeignKey("raters.id"), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime()),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", CheckedString(200, "actor name"), nullable=False),
    Column("action", CheckedString(50, "audit action"), nullable=False),
    Column("entity", CheckedString(50, "audit entity"), nullable=False),
    Column("entity_id", Integer),
    Column("details", JSON),
)
