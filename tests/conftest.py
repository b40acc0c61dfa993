"""Shared test fixtures: quiet TF, real facades and full-resolution Cityscapes, an isolated demo cache."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Under `pytest -n N` every worker (and the processes it starts) runs TF ops on one thread, one op at a
    # time: N workers on N cores no longer oversubscribe them (18 % less wall time for the MSG U-Net and PAN
    # tests with -n 2 on 2 cores). Set before TensorFlow is imported; a value already set is kept.
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

import pytest  # noqa: E402

from tests.helpers import demo_cache, shared_data_dir  # noqa: E402


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
    """Demo data is generated into the session's cache, never the user's ~/.cache."""
    monkeypatch.setenv("TFI2I_CACHE", str(demo_cache(tmp_path_factory)))
