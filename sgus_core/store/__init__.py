"""The labels store: schema, migrations and the repository (the only code that speaks SQL)."""

from sgus_core.store.repository import (
    BrowseRow,
    Dataset,
    Grade,
    ImageFilter,
    ImageRecord,
    LabelStore,
    MaskVersion,
    ModelRecord,
    NewImage,
    PredictionRecord,
    Rater,
    StatusEvent,
    open_store,
)

__all__ = [
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
    "open_store",
]
