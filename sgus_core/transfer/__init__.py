"""Moving labels in and out of the store: ``importing`` (``sgus import``), ``exporting``
(``sgus export``: csv, masks, COCO) and ``backup`` (``sgus backup`` / ``sgus restore``)."""

from sgus_core.transfer.exporting import (
    EXPORT_FORMATS,
    default_rater,
    export_dataset,
    export_zip,
    rle_decode,
)
from sgus_core.transfer.importing import (
    DEFAULT_IMPORT_RATER,
    KNOWN_COLUMNS,
    ImportReport,
    import_folder,
    read_labels_csv,
)

__all__ = [
    "DEFAULT_IMPORT_RATER",
    "EXPORT_FORMATS",
    "export_zip",
    "KNOWN_COLUMNS",
    "ImportReport",
    "default_rater",
    "export_dataset",
    "import_folder",
    "read_labels_csv",
    "rle_decode",
]
