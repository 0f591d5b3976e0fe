"""The labels store's tables (SQLAlchemy Core), the current shape of the schema.

History is append-only: mask versions, grades, status changes, predictions and the audit log only
ever get new rows. Each schema change ships as a numbered migration under ``migrations/versions``;
``tests/test_store.py`` checks that migrating an empty database gives exactly these tables.
"""

from __future__ import annotations

from datetime import UTC, datetime

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

metadata = MetaData()


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every engine (SQLite hands back naive datetimes)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None


datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("root_path", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

raters = Table(
    "raters",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("role", String(20), nullable=False, server_default="rater"),
    Column("password_hash", Text),
    Column("disabled", Boolean, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime(), nullable=False),
)

images = Table(
    "images",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("dataset_id", ForeignKey("datasets.id"), nullable=False),
    Column("path", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("frame_index", Integer, nullable=False, server_default="0"),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("patient", String(200)),
    Column("gland", String(20)),
    Column("side", String(1)),
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
    Column("name", String(200), nullable=False, unique=True),
    Column("dataset_id", ForeignKey("datasets.id"), nullable=False),
    Column("blind", Boolean, nullable=False, server_default="0"),
    Column("shuffled", Boolean, nullable=False, server_default="0"),
    Column("repeat_of", ForeignKey("rounds.id")),
    Column("settings", JSON),
    Column("created_at", UTCDateTime(), nullable=False),
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
    Column("name", String(200), nullable=False, unique=True),
    Column("task", String(20), nullable=False),
    Column("architecture", String(100), nullable=False),
    Column("path", Text, nullable=False),
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
    Column("source", String(20), nullable=False),
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
    Column("hocevar", JSON),
    Column("comment", Text),
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
    Column("status", String(20), nullable=False),
    Column("reason", Text),
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
    Column("name", String(200), nullable=False),
    Column("success", Boolean, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Index("ix_login_attempts_name_at", "name", "at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(50), nullable=False),
    Column("entity", String(50), nullable=False),
    Column("entity_id", Integer),
    Column("details", JSON),
)
