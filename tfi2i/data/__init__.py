"""Data: sources (folders, TFDS builders), decoding, augmentation, derived tasks, pipelines, demo set, downloads."""

from tfi2i.data.images import DataError, read_image
from tfi2i.data.sources import (
    PairedSource, SideBySide, SingleImages, SingleSource, Source, TwoFolders, find_splits, open_source,
)
from tfi2i.data import celebamask  # noqa: E402,F401  registers the celebamask layout with tfi2i.data.sources

__all__ = [
    "DataError", "read_image", "Source", "PairedSource", "SingleSource", "SideBySide", "TwoFolders", "SingleImages",
    "find_splits", "open_source",
]
