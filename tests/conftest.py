"""Shared test fixtures: quiet TF, real facades and full-resolution Cityscapes, an isolated demo cache."""

import os

import pytest

from tests.helpers import shared_data_dir

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def facades_dir():
    path = shared_data_dir() / "facades_train"
    if not path.is_dir():
        pytest.skip(f"real data absent: {path} (set TFI2I_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def cityscapes_fullres():
    """The 8 real 2048x1024 Cityscapes triples in pix2pixHD's layout (``../shared/data/cityscapes_fullres``)."""
    path = shared_data_dir() / "cityscapes_fullres"
    if not (path / "train_label").is_dir():
        pytest.skip(f"real data absent: {path} (set TFI2I_SHARED_DATA)")
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Demo data is generated into a per-session cache, never the user's ~/.cache."""
    monkeypatch.setenv("TFI2I_CACHE", str(tmp_path_factory.getbasetemp() / "tfi2i_cache"))
