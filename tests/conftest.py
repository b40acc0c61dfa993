"""Shared test fixtures: quiet TF, real-data location, a small workdir helper."""

import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = pathlib.Path(__file__).resolve().parents[1]


def shared_data_dir() -> pathlib.Path:
    """`$TFI2I_SHARED_DATA` or `../shared/data` next to the repository."""
    return pathlib.Path(os.environ.get("TFI2I_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def facades_dir():
    path = shared_data_dir() / "facades_train"
    if not path.is_dir():
        pytest.skip(f"real data absent: {path} (set TFI2I_SHARED_DATA)")
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Demo data is generated into a per-session cache, never the user's ~/.cache."""
    monkeypatch.setenv("TFI2I_CACHE", str(tmp_path_factory.getbasetemp() / "tfi2i_cache"))
