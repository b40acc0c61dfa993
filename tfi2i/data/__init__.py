"""Paired data: sources (layouts on disk), image decoding, augmentation, pipelines, demo set, downloads."""

from tfi2i.data.images import DataError, read_image
from tfi2i.data.sources import PairedSource, SideBySide, TwoFolders, find_splits, open_source

__all__ = ["DataError", "read_image", "PairedSource", "SideBySide", "TwoFolders", "find_splits", "open_source"]
