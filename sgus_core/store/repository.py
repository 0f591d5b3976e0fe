"""The labels store: the only code that speaks SQL.

Every write is one transaction that also appends to the audit log. Nothing is updated in place or
deleted by a normal action: a new mask, grade, status or prediction is a new row, and "the current
one" is always the latest row of its (image, rater) group.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, and_, create_engine, event, func, insert, select, text
from sqlalchemy.exc import IntegrityError

from sgus_core.errors import StoreError
from sgus_core.store import schema as t

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
WRITE_OPTION = "sgus_write"
SORT_KEYS = ("patient", "gland", "side", "grade", "added", "path")


def _now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- values crossing the boundary


@dataclass(frozen=True)
class Dataset:
    """A named collection of images rooted at a folder."""

    id: int
    name: str
    root_path: str
    created_at: datetime


@dataclass(frozen=True)
class Rater:
    """A person (or the synthetic "reference") whose labels the store keeps."""

    id: int
    name: str
    role: str
    disabled: bool


@dataclass(frozen=True)
class ImageRecord:
    """One frame in a dataset (a multi-frame file gives one record per frame)."""

    id: int
    dataset_id: int
    path: str
    content_hash: str
    frame_index: int
    width: int
    height: int
    patient: str | None
    gland: str | None
    side: str | None
    spacing_mm: float | None
    fov: tuple[int, int, int, int] | None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Short human label such as ``P0007 parotid R``."""
        parts = [self.patient or "?", self.gland or "", self.side or ""]
        text_ = " ".join(p for p in parts if p)
        return text_ if self.frame_index == 0 else f"{text_} #{self.frame_index}"


@dataclass(frozen=True)
class NewImage:
    """What an import knows about a frame before the store gives it an id."""

    path: str
    content_hash: str
    width: int
    height: int
    frame_index: int = 0
    patient: str | None = None
    gland: str | None = None
    side: str | None = None
    spacing_mm: float | None = None
    fov: tuple[int, int, int, int] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MaskVersion:
    """One saved mask (PNG bytes) of one rater for one image."""

    id: int
    image_id: int
    rater: str
    source: str
    parent_id: int | None
    model_id: int | None
    round_id: int | None
    png: bytes
    area_px: int
    created_at: datetime
    stale_parent: bool = False
    """True when saved on a parent that was no longer the rater's newest version (the save is kept
    as a new version; the user should be told a newer one exists)."""


@dataclass(frozen=True)
class Grade:
    """One saved set of grades of one rater for one image."""

    id: int
    image_id: int
    rater: str
    devita: int | None
    omeract: int | None
    hocevar: tuple[int, ...] | None
    comment: str | None
    confidence: int | None
    round_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class PredictionRecord:
    """One stored model prediction for one image."""

    id: int
    image_id: int
    model: str
    png: bytes
    area_px: int
    area_mm2: float | None
    grade: int | None
    grade_probabilities: tuple[float, ...] | None
    created_at: datetime


@dataclass(frozen=True)
class ModelRecord:
    """A registered model and its card."""

    id: int
    name: str
    task: str
    architecture: str
    path: str
    card: dict[str, Any]


@dataclass(frozen=True)
class StatusEvent:
    """One status change of (image, rater)."""

    id: int
    image_id: int
    rater: str
    status: str
    reason: str | None
    created_at: datetime


@dataclass(frozen=True)
class ImageFilter:
    """What the Browse page (and scripts) select images by. ``None`` means "any".

    ``grade``, ``status`` and ``has_mask`` look at ``rater``'s labels when a rater is given, else
    at the latest label of anyone.
    """

    dataset_id: int | None = None
    patient: str | None = None
    gland: str | None = None
    side: str | None = None
    grade: int | None = None
    status: str | None = None
    rater: str | None = None
    has_mask: bool | None = None
    has_prediction: bool | None = None


@dataclass(frozen=True)
class BrowseRow:
    """One line of a Browse page: the image plus its current labels."""

    image: ImageRecord
    devita: int | None
    status: str | None
    mask_version_id: int | None
    prediction_id: int | None


@dataclass(frozen=True)
class StudyRound:
    """A study round: a set of images labelled by a set of raters under one protocol."""

    id: int
    name: str
    dataset_id: int
    blind: bool
    shuffled: bool
    repeat_of: int | None
    image_ids: tuple[int, ...]
    raters: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log."""

    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: int | None
    details: dict[str, Any] | None


# ---------------------------------------------------------------- engine and migrations


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    """The newest migration revision shipped with this release."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL mode, foreign keys and a generous busy timeout.

    Raises:
        StoreError: the URL cannot be parsed or its driver is missing.
    """
    try:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
                # Transactions are begun by SQLAlchemy's "begin" event below, not by pysqlite.
                dbapi_conn.isolation_level = None
                cur = dbapi_conn.cursor()
                # WAL lets readers (Browse pages) go on while a rater saves; NORMAL sync is
                # crash-safe in WAL mode (a power cut may lose the last commit, never corrupt).
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA busy_timeout=60000")
                cur.close()

            @event.listens_for(engine, "begin")
            def _sqlite_begin(conn):  # pragma: no cover - trivial
                # A write transaction takes the write lock up front (BEGIN IMMEDIATE): a deferred
                # one that reads first and writes later can fail with SQLITE_BUSY at once when
                # another process wrote in between, without waiting for the busy timeout.
                immediate = conn.get_execution_options().get(WRITE_OPTION)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

            return engine
        return create_engine(url, pool_pre_ping=True)
    except Exception as exc:  # sqlalchemy raises several types for bad URLs / missing drivers
        raise StoreError(f"Cannot open the labels store at {url!r}: {exc}") from exc


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the database's write lock from its start (see ``make_engine``)."""
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            yield conn


def migrate(engine: Engine) -> str:
    """Bring the schema up to the newest revision; returns that revision.

    Safe when several processes open a new store at once: the migration runs under the write
    lock (SQLite) or a transaction-scoped advisory lock (PostgreSQL), so the second one finds the
    schema already at head.
    """
    cfg = _alembic_config()
    with write_transaction(engine) as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7405202)")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return current_revision(engine) or ""


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (``None`` for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


# ---------------------------------------------------------------- the store


class LabelStore:
    """Repository over one labels store. Thread-safe: share one per process.

    Args:
        url: SQLAlchemy URL (``sqlite:///path.db`` or ``postgresql+psycopg://...``).
        migrate_schema: run the migrations on open (the default).
    """

    def __init__(self, url: str, *, migrate_schema: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        if migrate_schema:
            migrate(self.engine)
        elif current_revision(self.engine) != head_revision():
            raise StoreError(
                "The labels store's schema is not at this release's version; "
                "open it once with migrations enabled (any `sgus` command does)."
            )
        self._rater_ids: dict[str, int] = {}

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One atomic unit of work; everything inside commits together or not at all."""
        with write_transaction(self.engine) as conn:
            yield conn

    # ------------------------------------------------------------ audit

    @staticmethod
    def _audit(
        conn: Connection,
        actor: str,
        action: str,
        entity: str,
        entity_id: int | None,
        details: dict[str, Any] | None = None,
    ) -> None:
        conn.execute(
            insert(t.audit_log).values(
                at=_now(),
                actor=actor,
                action=action,
                entity=entity,
                entity_id=entity_id,
                details=details,
            )
        )

    def audit_log(self, *, limit: int = 200) -> list[AuditEntry]:
        """The newest audit entries first."""
        q = select(t.audit_log).order_by(t.audit_log.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [AuditEntry(**r._mapping) for r in conn.execute(q)]

    # ------------------------------------------------------------ datasets

    def ensure_dataset(self, name: str, root_path: str | Path, *, actor: str = "system") -> Dataset:
        """Return the dataset called ``name``, creating it (rooted at ``root_path``) if missing."""
        name = name.strip()
        if not name:
            raise StoreError("A dataset needs a name.")
        existing = self.get_dataset(name)
        if existing:
            return existing
        try:
            with self.transaction() as conn:
                new_id = conn.execute(
                    insert(t.datasets).values(
                        name=name, root_path=str(root_path), created_at=_now()
                    )
                ).inserted_primary_key[0]
                self._audit(conn, actor, "create", "dataset", new_id, {"name": name})
        except IntegrityError:
            pass  # another process created it first: use theirs
        found = self.get_dataset(name)
        assert found is not None
        return found

    def get_dataset(self, name: str) -> Dataset | None:
        """The dataset called ``name`` or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(select(t.datasets).where(t.datasets.c.name == name)).first()
        return Dataset(**row._mapping) if row else None

    def require_dataset(self, name: str) -> Dataset:
        """The dataset called ``name``; raises :class:`StoreError` naming the ones that exist."""
        found = self.get_dataset(name)
        if found is None:
            names = ", ".join(d.name for d in self.list_datasets()) or "none yet"
            raise StoreError(f"No dataset named {name!r} (datasets: {names}).")
        return found

    def list_datasets(self) -> list[Dataset]:
        """Every dataset, by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.datasets).order_by(t.datasets.c.name))
            return [Dataset(**r._mapping) for r in rows]

    # ------------------------------------------------------------ raters

    def ensure_rater(self, name: str, *, role: str = "rater", actor: str = "system") -> Rater:
        """Return the rater called ``name``, creating them with ``role`` if missing."""
        name = name.strip()
        if not name:
            raise StoreError("A rater needs a name.")
        if role not in t.ROLES:
            raise StoreError(f"Unknown role {role!r}; choose one of {', '.join(t.ROLES)}.")
        existing = self.get_rater(name)
        if existing:
            return existing
        try:
            with self.transaction() as conn:
                new_id = conn.execute(
                    insert(t.raters).values(name=name, role=role, created_at=_now())
                ).inserted_primary_key[0]
                self._audit(conn, actor, "create", "rater", new_id, {"name": name, "role": role})
        except IntegrityError:
            pass
        found = self.get_rater(name)
        assert found is not None
        return found

    def get_rater(self, name: str) -> Rater | None:
        """The rater called ``name`` or ``None``."""
        cols = (t.raters.c.id, t.raters.c.name, t.raters.c.role, t.raters.c.disabled)
        with self.engine.connect() as conn:
            row = conn.execute(select(*cols).where(t.raters.c.name == name)).first()
        return Rater(**row._mapping) if row else None

    def list_raters(self) -> list[Rater]:
        """Every rater, by name."""
        cols = (t.raters.c.id, t.raters.c.name, t.raters.c.role, t.raters.c.disabled)
        with self.engine.connect() as conn:
            return [Rater(**r._mapping) for r in conn.execute(select(*cols).order_by("name"))]

    def password_hash(self, name: str) -> str | None:
        """The stored password hash of an account (``None`` when it has no password)."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(t.raters.c.password_hash).where(t.raters.c.name == name)
            ).scalar()

    def update_account(
        self,
        name: str,
        *,
        password_hash: str | None = None,
        role: str | None = None,
        disabled: bool | None = None,
        actor: str = "system",
    ) -> Rater:
        """Change an account's password hash, role or disabled flag (audited; the hash never is).

        Accounts are the one thing that changes in place: a label never does.
        """
        values: dict[str, Any] = {}
        if password_hash is not None:
            values["password_hash"] = password_hash
        if role is not None:
            if role not in t.ROLES:
                raise StoreError(f"Unknown role {role!r}; choose one of {', '.join(t.ROLES)}.")
            values["role"] = role
        if disabled is not None:
            values["disabled"] = disabled
        with self.transaction() as conn:
            rater_id = self._rater_id(conn, name)
            conn.execute(t.raters.update().where(t.raters.c.id == rater_id).values(**values))
            details = {k: v for k, v in values.items() if k != "password_hash"}
            if "password_hash" in values:
                details["password"] = "changed"
            self._audit(conn, actor, "update", "account", rater_id, details)
        found = self.get_rater(name)
        assert found is not None
        return found

    def record_login(self, name: str, success: bool) -> None:
        """Remember a sign-in attempt (for rate limiting)."""
        with self.transaction() as conn:
            conn.execute(insert(t.login_attempts).values(name=name, success=success, at=_now()))

    def failed_logins_since(self, name: str, since: datetime) -> int:
        """Failed sign-in attempts for ``name`` since ``since`` after its last success."""
        with self.engine.connect() as conn:
            last_ok = conn.execute(
                select(func.max(t.login_attempts.c.at)).where(
                    t.login_attempts.c.name == name, t.login_attempts.c.success.is_(True)
                )
            ).scalar()
            start = since if last_ok is None else max(since, last_ok)
            return conn.execute(
                select(func.count()).where(
                    t.login_attempts.c.name == name,
                    t.login_attempts.c.success.is_(False),
                    t.login_attempts.c.at > start,
                )
            ).scalar_one()

    def _rater_id(self, conn: Connection, name: str) -> int:
        cached = self._rater_ids.get(name)
        if cached is not None:
            return cached
        row = conn.execute(select(t.raters.c.id).where(t.raters.c.name == name)).first()
        if row is None:
            raise StoreError(f"No rater named {name!r}.")
        self._rater_ids[name] = row[0]
        return row[0]

    # ------------------------------------------------------------ images

    def add_images(
        self, dataset_id: int, new_images: Sequence[NewImage], *, actor: str = "system"
    ) -> list[tuple[int, bool]]:
        """Add frames in one transaction; a frame already present (same content hash and frame
        index in the dataset) is not added again.

        Returns:
            One ``(image_id, created)`` per input, in order.
        """
        for attempt in range(3):
            try:
                return self._add_images(dataset_id, new_images, actor)
            except IntegrityError:
                # Another process added one of these frames between our check and our insert:
                # the transaction rolled back whole; the retry finds theirs as already present.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _add_images(self, dataset_id, new_images, actor) -> list[tuple[int, bool]]:
        out: list[tuple[int, bool]] = []
        with self.transaction() as conn:
            for img in new_images:
                existing = self._find_image_id(conn, dataset_id, img.content_hash, img.frame_index)
                if existing is not None:
                    out.append((existing, False))
                    continue
                fov = img.fov or (None, None, None, None)
                new_id = conn.execute(
                    insert(t.images).values(
                        dataset_id=dataset_id,
                        path=img.path,
                        content_hash=img.content_hash,
                        frame_index=img.frame_index,
                        width=img.width,
                        height=img.height,
                        patient=img.patient,
                        gland=img.gland,
                        side=img.side,
                        spacing_mm=img.spacing_mm,
                        fov_x=fov[0],
                        fov_y=fov[1],
                        fov_width=fov[2],
                        fov_height=fov[3],
                        meta=img.meta or {},
                        created_at=_now(),
                    )
                ).inserted_primary_key[0]
                self._audit(conn, actor, "create", "image", new_id, {"path": img.path})
                out.append((new_id, True))
        return out

    def add_image(self, dataset_id: int, new_image: NewImage, *, actor: str = "system"):
        """Add one frame; returns ``(image_id, created)`` (see :meth:`add_images`)."""
        return self.add_images(dataset_id, [new_image], actor=actor)[0]

    @staticmethod
    def _find_image_id(conn: Connection, dataset_id: int, content_hash: str, frame_index: int):
        row = conn.execute(
            select(t.images.c.id).where(
                t.images.c.dataset_id == dataset_id,
                t.images.c.content_hash == content_hash,
                t.images.c.frame_index == frame_index,
            )
        ).first()
        return row[0] if row else None

    def find_image(self, dataset_id: int, content_hash: str, frame_index: int = 0):
        """The image with this content hash and frame index in the dataset, or ``None``."""
        with self.engine.connect() as conn:
            image_id = self._find_image_id(conn, dataset_id, content_hash, frame_index)
        return self.get_image(image_id) if image_id is not None else None

    @staticmethod
    def _image_from_row(row: Any) -> ImageRecord:
        m = row._mapping
        fov = None
        if m["fov_width"] is not None:
            fov = (m["fov_x"], m["fov_y"], m["fov_width"], m["fov_height"])
        return ImageRecord(
            id=m["id"],
            dataset_id=m["dataset_id"],
            path=m["path"],
            content_hash=m["content_hash"],
            frame_index=m["frame_index"],
            width=m["width"],
            height=m["height"],
            patient=m["patient"],
            gland=m["gland"],
            side=m["side"],
            spacing_mm=m["spacing_mm"],
            fov=fov,
            meta=m["meta"] or {},
        )

    def get_image(self, image_id: int) -> ImageRecord:
        """The image with this id; raises :class:`StoreError` if there is none."""
        with self.engine.connect() as conn:
            row = conn.execute(select(t.images).where(t.images.c.id == image_id)).first()
        if row is None:
            raise StoreError(f"No image with id {image_id}.")
        return self._image_from_row(row)

    def list_images(self, dataset_id: int) -> list[ImageRecord]:
        """Every image of a dataset in insertion order."""
        q = select(t.images).where(t.images.c.dataset_id == dataset_id).order_by(t.images.c.id)
        with self.engine.connect() as conn:
            return [self._image_from_row(r) for r in conn.execute(q)]

    def image_path(self, image: ImageRecord) -> Path:
        """The image's file on disk (paths are stored relative to the dataset root)."""
        with self.engine.connect() as conn:
            root = conn.execute(
                select(t.datasets.c.root_path).where(t.datasets.c.id == image.dataset_id)
            ).scalar_one()
        return Path(root) / image.path

    def patients(self, dataset_id: int) -> list[str]:
        """Distinct patient ids of a dataset, sorted."""
        q = (
            select(t.images.c.patient)
            .where(t.images.c.dataset_id == dataset_id, t.images.c.patient.is_not(None))
            .distinct()
            .order_by(t.images.c.patient)
        )
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(q)]

    # ------------------------------------------------------------ masks

    def save_mask(
        self,
        image_id: int,
        rater: str,
        png: bytes,
        *,
        area_px: int,
        source: str,
        parent_id: int | None = None,
        model_id: int | None = None,
        round_id: int | None = None,
        actor: str | None = None,
    ) -> MaskVersion:
        """Append a new mask version; earlier versions stay untouched.

        Raises:
            StoreError: unknown source, image or rater, or a parent of another image.
        """
        if source not in t.MASK_SOURCES:
            raise StoreError(f"Unknown mask source {source!r}; use one of {t.MASK_SOURCES}.")
        with self.transaction() as conn:
            return self._save_mask(
                conn, image_id, rater, png, area_px, source, parent_id, model_id, round_id, actor
            )

    def _save_mask(
        self, conn, image_id, rater, png, area_px, source, parent_id, model_id, round_id, actor
    ) -> MaskVersion:
        rater_id = self._rater_id(conn, rater)
        if parent_id is not None:
            parent_image = conn.execute(
                select(t.mask_versions.c.image_id).where(t.mask_versions.c.id == parent_id)
            ).scalar()
            if parent_image != image_id:
                raise StoreError(f"Mask version {parent_id} is not a version of image {image_id}.")
        newest = conn.execute(
            select(func.max(t.mask_versions.c.id)).where(
                t.mask_versions.c.image_id == image_id, t.mask_versions.c.rater_id == rater_id
            )
        ).scalar()
        stale = parent_id is not None and newest is not None and newest != parent_id
        now = _now()
        new_id = conn.execute(
            insert(t.mask_versions).values(
                image_id=image_id,
                rater_id=rater_id,
                round_id=round_id,
                source=source,
                parent_id=parent_id,
                model_id=model_id,
                png=png,
                area_px=int(area_px),
                created_at=now,
            )
        ).inserted_primary_key[0]
        self._audit(
            conn,
            actor or rater,
            "save",
            "mask",
            new_id,
            {
                "image_id": image_id,
                "rater": rater,
                "source": source,
                "parent_id": parent_id,
                "stale_parent": stale,
            },
        )
        return MaskVersion(
            new_id, image_id, rater, source, parent_id, model_id, round_id, png, int(area_px), now,
            stale,
        )  # fmt: skip

    _MASK_COLS = (
        t.mask_versions.c.id,
        t.mask_versions.c.image_id,
        t.raters.c.name.label("rater"),
        t.mask_versions.c.source,
        t.mask_versions.c.parent_id,
        t.mask_versions.c.model_id,
        t.mask_versions.c.round_id,
        t.mask_versions.c.png,
        t.mask_versions.c.area_px,
        t.mask_versions.c.created_at,
    )

    def mask_history(self, image_id: int, rater: str | None = None) -> list[MaskVersion]:
        """Every mask version of an image (optionally of one rater), oldest first."""
        q = (
            select(*self._MASK_COLS)
            .join(t.raters, t.raters.c.id == t.mask_versions.c.rater_id)
            .where(t.mask_versions.c.image_id == image_id)
            .order_by(t.mask_versions.c.id)
        )
        if rater is not None:
            q = q.where(t.raters.c.name == rater)
        with self.engine.connect() as conn:
            return [MaskVersion(**r._mapping) for r in conn.execute(q)]

    def get_mask(self, version_id: int) -> MaskVersion:
        """One mask version by id."""
        q = (
            select(*self._MASK_COLS)
            .join(t.raters, t.raters.c.id == t.mask_versions.c.rater_id)
            .where(t.mask_versions.c.id == version_id)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        if row is None:
            raise StoreError(f"No mask version with id {version_id}.")
        return MaskVersion(**row._mapping)

    def latest_masks(self, image_id: int) -> dict[str, MaskVersion]:
        """Each rater's newest mask version of an image."""
        latest: dict[str, MaskVersion] = {}
        for version in self.mask_history(image_id):
            latest[version.rater] = version
        return latest

    def latest_masks_for_dataset(self, dataset_id: int, rater: str) -> dict[int, MaskVersion]:
        """``{image_id: newest mask version of rater}`` over a dataset, in one query."""
        newest = (
            select(func.max(t.mask_versions.c.id))
            .join(t.images, t.images.c.id == t.mask_versions.c.image_id)
            .join(t.raters, t.raters.c.id == t.mask_versions.c.rater_id)
            .where(t.images.c.dataset_id == dataset_id, t.raters.c.name == rater)
            .group_by(t.mask_versions.c.image_id)
        )
        q = (
            select(*self._MASK_COLS)
            .join(t.raters, t.raters.c.id == t.mask_versions.c.rater_id)
            .where(t.mask_versions.c.id.in_(newest))
        )
        with self.engine.connect() as conn:
            return {r.image_id: MaskVersion(**r._mapping) for r in conn.execute(q)}

    # ------------------------------------------------------------ grades

    def save_grade(
        self,
        image_id: int,
        rater: str,
        *,
        devita: int | None = None,
        omeract: int | None = None,
        hocevar: Sequence[int] | None = None,
        comment: str | None = None,
        confidence: int | None = None,
        round_id: int | None = None,
        actor: str | None = None,
    ) -> Grade:
        """Append a new set of grades for (image, rater).

        Raises:
            StoreError: a grade outside 0-3, or nothing to save.
        """
        for label, value in (("de Vita", devita), ("OMERACT", omeract)):
            if value is not None and value not in (0, 1, 2, 3):
                raise StoreError(f"{label} grade must be 0, 1, 2 or 3, not {value!r}.")
        if devita is None and omeract is None and hocevar is None and not comment:
            raise StoreError(
                "Nothing to save: give a de Vita or OMERACT grade, items or a comment."
            )
        with self.transaction() as conn:
            return self._save_grade(
                conn,
                image_id,
                rater,
                devita,
                omeract,
                hocevar,
                comment,
                confidence,
                round_id,
                actor,
            )

    def _save_grade(
        self, conn, image_id, rater, devita, omeract, hocevar, comment, confidence, round_id, actor
    ) -> Grade:
        rater_id = self._rater_id(conn, rater)
        now = _now()
        items = list(hocevar) if hocevar is not None else None
        new_id = conn.execute(
            insert(t.grades).values(
                image_id=image_id,
                rater_id=rater_id,
                round_id=round_id,
                devita=devita,
                omeract=omeract,
                hocevar=items,
                comment=comment,
                confidence=confidence,
                created_at=now,
            )
        ).inserted_primary_key[0]
        self._audit(
            conn,
            actor or rater,
            "save",
            "grade",
            new_id,
            {"image_id": image_id, "rater": rater, "devita": devita, "omeract": omeract},
        )
        return Grade(
            new_id,
            image_id,
            rater,
            devita,
            omeract,
            tuple(items) if items is not None else None,
            comment,
            confidence,
            round_id,
            now,
        )

    _GRADE_COLS = (
        t.grades.c.id,
        t.grades.c.image_id,
        t.raters.c.name.label("rater"),
        t.grades.c.devita,
        t.grades.c.omeract,
        t.grades.c.hocevar,
        t.grades.c.comment,
        t.grades.c.confidence,
        t.grades.c.round_id,
        t.grades.c.created_at,
    )

    @staticmethod
    def _grade_from_row(row: Any) -> Grade:
        m = dict(row._mapping)
        m["hocevar"] = tuple(m["hocevar"]) if m["hocevar"] is not None else None
        return Grade(**m)

    def grade_history(self, image_id: int, rater: str | None = None) -> list[Grade]:
        """Every grade of an image (optionally of one rater), oldest first."""
        q = (
            select(*self._GRADE_COLS)
            .join(t.raters, t.raters.c.id == t.grades.c.rater_id)
            .where(t.grades.c.image_id == image_id)
            .order_by(t.grades.c.id)
        )
        if rater is not None:
            q = q.where(t.raters.c.name == rater)
        with self.engine.connect() as conn:
            return [self._grade_from_row(r) for r in conn.execute(q)]

    def latest_grades(self, image_id: int) -> dict[str, Grade]:
        """Each rater's newest grades of an image."""
        latest: dict[str, Grade] = {}
        for grade in self.grade_history(image_id):
            latest[grade.rater] = grade
        return latest

    def latest_grades_for_dataset(self, dataset_id: int, rater: str) -> dict[int, Grade]:
        """``{image_id: newest grade of rater}`` over a dataset, in one query."""
        newest = (
            select(func.max(t.grades.c.id))
            .join(t.images, t.images.c.id == t.grades.c.image_id)
            .join(t.raters, t.raters.c.id == t.grades.c.rater_id)
            .where(t.images.c.dataset_id == dataset_id, t.raters.c.name == rater)
            .group_by(t.grades.c.image_id)
        )
        q = (
            select(*self._GRADE_COLS)
            .join(t.raters, t.raters.c.id == t.grades.c.rater_id)
            .where(t.grades.c.id.in_(newest))
        )
        with self.engine.connect() as conn:
            return {r.image_id: self._grade_from_row(r) for r in conn.execute(q)}

    # ------------------------------------------------------------ labels in one go

    def save_labels(
        self,
        image_id: int,
        rater: str,
        *,
        mask_png: bytes | None = None,
        area_px: int = 0,
        source: str = "imported",
        parent_id: int | None = None,
        devita: int | None = None,
        omeract: int | None = None,
        round_id: int | None = None,
        actor: str | None = None,
    ) -> tuple[MaskVersion | None, Grade | None]:
        """Save a mask and grades of one image atomically (both or neither)."""
        for label, value in (("de Vita", devita), ("OMERACT", omeract)):
            if value is not None and value not in (0, 1, 2, 3):
                raise StoreError(f"{label} grade must be 0, 1, 2 or 3, not {value!r}.")
        with self.transaction() as conn:
            mask = None
            grade = None
            if mask_png is not None:
                mask = self._save_mask(
                    conn,
                    image_id,
                    rater,
                    mask_png,
                    area_px,
                    source,
                    parent_id,
                    None,
                    round_id,
                    actor,
                )
            if devita is not None or omeract is not None:
                grade = self._save_grade(
                    conn, image_id, rater, devita, omeract, None, None, None, round_id, actor
                )
        return mask, grade

    # ------------------------------------------------------------ status

    def set_status(
        self,
        image_id: int,
        rater: str,
        status: str,
        *,
        reason: str | None = None,
        round_id: int | None = None,
        actor: str | None = None,
    ) -> StatusEvent:
        """Record a status change of (image, rater); a flag needs a reason."""
        if status not in t.STATUSES:
            raise StoreError(f"Unknown status {status!r}; use one of {', '.join(t.STATUSES)}.")
        if status == "flagged" and not (reason and reason.strip()):
            raise StoreError("Say why the image is flagged.")
        now = _now()
        with self.transaction() as conn:
            rater_id = self._rater_id(conn, rater)
            new_id = conn.execute(
                insert(t.status_events).values(
                    image_id=image_id,
                    rater_id=rater_id,
                    round_id=round_id,
                    status=status,
                    reason=reason,
                    created_at=now,
                )
            ).inserted_primary_key[0]
            self._audit(
                conn,
                actor or rater,
                "set",
                "status",
                new_id,
                {"image_id": image_id, "rater": rater, "status": status, "reason": reason},
            )
        return StatusEvent(new_id, image_id, rater, status, reason, now)

    def status_history(self, image_id: int) -> list[StatusEvent]:
        """Every status change of an image, oldest first."""
        q = (
            select(
                t.status_events.c.id,
                t.status_events.c.image_id,
                t.raters.c.name.label("rater"),
                t.status_events.c.status,
                t.status_events.c.reason,
                t.status_events.c.created_at,
            )
            .join(t.raters, t.raters.c.id == t.status_events.c.rater_id)
            .where(t.status_events.c.image_id == image_id)
            .order_by(t.status_events.c.id)
        )
        with self.engine.connect() as conn:
            return [StatusEvent(**r._mapping) for r in conn.execute(q)]

    # ------------------------------------------------------------ models and predictions

    def register_model(
        self,
        name: str,
        *,
        task: str,
        architecture: str,
        path: str | Path,
        card: dict[str, Any],
        actor: str = "system",
    ) -> ModelRecord:
        """Register a trained model (a new name each time: a model is never replaced)."""
        existing = self.get_model(name)
        if existing is not None:
            if existing.path == str(path) and existing.card == card:
                return existing
            raise StoreError(f"A model named {name!r} is already registered; choose a new name.")
        with self.transaction() as conn:
            new_id = conn.execute(
                insert(t.models).values(
                    name=name,
                    task=task,
                    architecture=architecture,
                    path=str(path),
                    card=json.loads(json.dumps(card)),
                    created_at=_now(),
                )
            ).inserted_primary_key[0]
            self._audit(conn, actor, "register", "model", new_id, {"name": name})
        found = self.get_model(name)
        assert found is not None
        return found

    def get_model(self, name: str) -> ModelRecord | None:
        """The registered model called ``name`` or ``None``."""
        cols = (
            t.models.c.id,
            t.models.c.name,
            t.models.c.task,
            t.models.c.architecture,
            t.models.c.path,
            t.models.c.card,
        )
        with self.engine.connect() as conn:
            row = conn.execute(select(*cols).where(t.models.c.name == name)).first()
        return ModelRecord(**row._mapping) if row else None

    def list_models(self) -> list[ModelRecord]:
        """Every registered model, by name."""
        cols = (
            t.models.c.id,
            t.models.c.name,
            t.models.c.task,
            t.models.c.architecture,
            t.models.c.path,
            t.models.c.card,
        )
        with self.engine.connect() as conn:
            return [ModelRecord(**r._mapping) for r in conn.execute(select(*cols).order_by("name"))]

    def save_prediction(
        self,
        image_id: int,
        model_name: str,
        png: bytes,
        *,
        area_px: int,
        area_mm2: float | None = None,
        grade: int | None = None,
        grade_probabilities: Sequence[float] | None = None,
        actor: str = "model",
    ) -> PredictionRecord:
        """Append a model prediction of an image (the model must be registered)."""
        model = self.get_model(model_name)
        if model is None:
            raise StoreError(f"Model {model_name!r} is not registered in the labels store.")
        now = _now()
        probs = [float(p) for p in grade_probabilities] if grade_probabilities is not None else None
        with self.transaction() as conn:
            new_id = conn.execute(
                insert(t.predictions).values(
                    image_id=image_id,
                    model_id=model.id,
                    png=png,
                    area_px=int(area_px),
                    area_mm2=area_mm2,
                    grade=grade,
                    grade_probabilities=probs,
                    created_at=now,
                )
            ).inserted_primary_key[0]
            self._audit(
                conn,
                actor,
                "save",
                "prediction",
                new_id,
                {"image_id": image_id, "model": model_name},
            )
        return PredictionRecord(
            new_id,
            image_id,
            model_name,
            png,
            int(area_px),
            area_mm2,
            grade,
            tuple(probs) if probs is not None else None,
            now,
        )

    def models_with_predictions(self, dataset_id: int) -> list[str]:
        """Names of the models that have predictions of images of the dataset."""
        q = (
            select(t.models.c.name)
            .join(t.predictions, t.predictions.c.model_id == t.models.c.id)
            .join(t.images, t.images.c.id == t.predictions.c.image_id)
            .where(t.images.c.dataset_id == dataset_id)
            .distinct()
            .order_by(t.models.c.name)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(q).scalars())

    def latest_prediction(self, image_id: int, model_name: str | None = None):
        """The newest prediction of an image (optionally of one model), or ``None``."""
        q = (
            select(
                t.predictions.c.id,
                t.predictions.c.image_id,
                t.models.c.name.label("model"),
                t.predictions.c.png,
                t.predictions.c.area_px,
                t.predictions.c.area_mm2,
                t.predictions.c.grade,
                t.predictions.c.grade_probabilities,
                t.predictions.c.created_at,
            )
            .join(t.models, t.models.c.id == t.predictions.c.model_id)
            .where(t.predictions.c.image_id == image_id)
            .order_by(t.predictions.c.id.desc())
            .limit(1)
        )
        if model_name is not None:
            q = q.where(t.models.c.name == model_name)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        if row is None:
            return None
        m = dict(row._mapping)
        gp = m["grade_probabilities"]
        m["grade_probabilities"] = tuple(gp) if gp is not None else None
        return PredictionRecord(**m)

    # ------------------------------------------------------------ study rounds

    def create_round(
        self,
        name: str,
        dataset_id: int,
        image_ids: Sequence[int],
        raters: Sequence[str],
        *,
        blind: bool = False,
        shuffled: bool = False,
        repeat_of: int | None = None,
        actor: str = "system",
    ) -> StudyRound:
        """Create a study round over ``image_ids`` for ``raters`` (names must exist).

        Raises:
            StoreError: empty round, unknown rater, image of another dataset, or a taken name.
        """
        if not image_ids or not raters:
            raise StoreError("A round needs at least one image and one rater.")
        if self.get_round(name) is not None:
            raise StoreError(f"A round named {name!r} exists already; choose another name.")
        with self.transaction() as conn:
            foreign = conn.execute(
                select(func.count()).where(
                    t.images.c.id.in_(list(image_ids)), t.images.c.dataset_id != dataset_id
                )
            ).scalar_one()
            if foreign:
                raise StoreError(f"{foreign} of the images are not in this round's dataset.")
            rater_ids = [self._rater_id(conn, r) for r in raters]
            round_id = conn.execute(
                insert(t.rounds).values(
                    name=name,
                    dataset_id=dataset_id,
                    blind=blind,
                    shuffled=shuffled,
                    repeat_of=repeat_of,
                    created_at=_now(),
                )
            ).inserted_primary_key[0]
            conn.execute(
                insert(t.round_images),
                [{"round_id": round_id, "image_id": i} for i in dict.fromkeys(image_ids)],
            )
            conn.execute(
                insert(t.round_raters),
                [{"round_id": round_id, "rater_id": r} for r in dict.fromkeys(rater_ids)],
            )
            self._audit(
                conn,
                actor,
                "create",
                "round",
                round_id,
                {"name": name, "images": len(image_ids), "raters": list(raters), "blind": blind},
            )
        found = self.get_round(name)
        assert found is not None
        return found

    def get_round(self, name_or_id: str | int) -> StudyRound | None:
        """A round by name or id, or ``None``."""
        col = t.rounds.c.id if isinstance(name_or_id, int) else t.rounds.c.name
        with self.engine.connect() as conn:
            row = conn.execute(select(t.rounds).where(col == name_or_id)).first()
            if row is None:
                return None
            image_ids = conn.execute(
                select(t.round_images.c.image_id)
                .where(t.round_images.c.round_id == row.id)
                .order_by(t.round_images.c.image_id)
            ).scalars()
            raters_ = conn.execute(
                select(t.raters.c.name)
                .join(t.round_raters, t.round_raters.c.rater_id == t.raters.c.id)
                .where(t.round_raters.c.round_id == row.id)
                .order_by(t.raters.c.name)
            ).scalars()
            return StudyRound(
                id=row.id,
                name=row.name,
                dataset_id=row.dataset_id,
                blind=bool(row.blind),
                shuffled=bool(row.shuffled),
                repeat_of=row.repeat_of,
                image_ids=tuple(image_ids),
                raters=tuple(raters_),
                created_at=row.created_at,
            )

    def list_rounds(self, dataset_id: int | None = None) -> list[StudyRound]:
        """Every round (of one dataset), oldest first."""
        q = select(t.rounds.c.id).order_by(t.rounds.c.id)
        if dataset_id is not None:
            q = q.where(t.rounds.c.dataset_id == dataset_id)
        with self.engine.connect() as conn:
            ids = list(conn.execute(q).scalars())
        return [r for r in (self.get_round(i) for i in ids) if r is not None]

    def latest_statuses(self, rater: str, round_id: int | None) -> dict[int, str]:
        """``{image_id: latest status}`` of one rater within a round (or outside any round)."""
        cond = (
            t.status_events.c.round_id.is_(None)
            if round_id is None
            else t.status_events.c.round_id == round_id
        )
        newest = (
            select(func.max(t.status_events.c.id))
            .join(t.raters, t.raters.c.id == t.status_events.c.rater_id)
            .where(t.raters.c.name == rater, cond)
            .group_by(t.status_events.c.image_id)
        )
        q = select(t.status_events.c.image_id, t.status_events.c.status).where(
            t.status_events.c.id.in_(newest)
        )
        with self.engine.connect() as conn:
            return {r.image_id: r.status for r in conn.execute(q)}

    # ------------------------------------------------------------ browsing

    def _latest_per_image(self, table, rater_id: int | None):
        """Subquery: the newest row id of ``table`` per image (for one rater, or anyone)."""
        q = select(table.c.image_id, func.max(table.c.id).label("last_id")).group_by(
            table.c.image_id
        )
        if rater_id is not None:
            q = q.where(table.c.rater_id == rater_id)
        return q.subquery()

    def browse(
        self,
        flt: ImageFilter,
        *,
        sort: str = "patient",
        descending: bool = False,
        offset: int = 0,
        limit: int = 24,
    ) -> tuple[list[BrowseRow], int]:
        """One page of images matching ``flt`` with their current labels, and the total count.

        Raises:
            StoreError: unknown sort key or rater.
        """
        if sort not in SORT_KEYS:
            raise StoreError(f"Unknown sort {sort!r}; use one of {', '.join(SORT_KEYS)}.")
        with self.engine.connect() as conn:
            rater_id = None
            if flt.rater:
                rater_id = self._rater_id(conn, flt.rater)
            last_grade = self._latest_per_image(t.grades, rater_id)
            last_status = self._latest_per_image(t.status_events, rater_id)
            last_mask = self._latest_per_image(t.mask_versions, rater_id)
            last_pred = (
                select(t.predictions.c.image_id, func.max(t.predictions.c.id).label("last_id"))
                .group_by(t.predictions.c.image_id)
                .subquery()
            )
            g = t.grades.alias("g")
            s = t.status_events.alias("s")
            q = (
                select(
                    t.images,
                    g.c.devita,
                    s.c.status,
                    last_mask.c.last_id.label("mask_version_id"),
                    last_pred.c.last_id.label("prediction_id"),
                )
                .select_from(t.images)
                .outerjoin(last_grade, last_grade.c.image_id == t.images.c.id)
                .outerjoin(g, g.c.id == last_grade.c.last_id)
                .outerjoin(last_status, last_status.c.image_id == t.images.c.id)
                .outerjoin(s, s.c.id == last_status.c.last_id)
                .outerjoin(last_mask, last_mask.c.image_id == t.images.c.id)
                .outerjoin(last_pred, last_pred.c.image_id == t.images.c.id)
            )
            conds = []
            if flt.dataset_id is not None:
                conds.append(t.images.c.dataset_id == flt.dataset_id)
            if flt.patient:
                conds.append(t.images.c.patient == flt.patient)
            if flt.gland:
                conds.append(t.images.c.gland == flt.gland)
            if flt.side:
                conds.append(t.images.c.side == flt.side)
            if flt.grade is not None:
                conds.append(g.c.devita == flt.grade)
            if flt.status:
                # No status row yet means "todo" for that rater.
                if flt.status == "todo":
                    conds.append((s.c.status == "todo") | s.c.status.is_(None))
                else:
                    conds.append(s.c.status == flt.status)
            if flt.has_mask is not None:
                col = last_mask.c.last_id
                conds.append(col.is_not(None) if flt.has_mask else col.is_(None))
            if flt.has_prediction is not None:
                col = last_pred.c.last_id
                conds.append(col.is_not(None) if flt.has_prediction else col.is_(None))
            if conds:
                q = q.where(and_(*conds))
            total = conn.execute(select(func.count()).select_from(q.subquery())).scalar_one()
            order_col = {
                "patient": t.images.c.patient,
                "gland": t.images.c.gland,
                "side": t.images.c.side,
                "grade": g.c.devita,
                "added": t.images.c.id,
                "path": t.images.c.path,
            }[sort]
            order = [order_col.desc() if descending else order_col.asc()]
            order += [t.images.c.gland, t.images.c.side, t.images.c.id]
            rows = conn.execute(q.order_by(*order).offset(offset).limit(limit)).all()
        out = [
            BrowseRow(
                image=self._image_from_row(r),
                devita=r.devita,
                status=r.status,
                mask_version_id=r.mask_version_id,
                prediction_id=r.prediction_id,
            )
            for r in rows
        ]
        return out, int(total)

    def counts(self) -> dict[str, int]:
        """Row counts of the main tables (for status displays and tests)."""
        names = (
            "datasets",
            "images",
            "raters",
            "mask_versions",
            "grades",
            "predictions",
            "audit_log",
        )
        with self.engine.connect() as conn:
            return {n: conn.execute(text(f"SELECT COUNT(*) FROM {n}")).scalar_one() for n in names}

    def integrity_ok(self) -> bool:
        """SQLite's integrity check (always True on other engines, which check on write)."""
        if not self.url.startswith("sqlite"):
            return True
        with self.engine.connect() as conn:
            return conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"


def open_store(url: str | None = None) -> LabelStore:
    """Open (and migrate) the store at ``url`` or at the configured ``SGUS_DB_URL``."""
    if url is None:
        from sgus_core.settings import load_settings

        url = load_settings().db_url
    return LabelStore(url)
