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


#: Test files by their measured time in the suite, longest first (seconds of test time, `python -m pytest -n 2
#: --durations=0`, 2026-12-02): they start first, so that under `-n 2 --dist worksteal` the last tests running
#: are short ones and neither worker waits long on the other at the end. Files not listed follow in their
#: usual order. Each file's tests stay together (module fixtures are built once per worker).
LONGEST_FIRST = (
    "test_chain.py",  # 288
    "test_train.py",  # 326 (before 2026-12-02's merges)
    "test_pan.py",  # 197
    "test_pix2pixhd_features.py",  # 176
    "test_hardening_runs.py",  # 125
    "test_msg_ablations.py",  # 103
    "test_pix2pixhd.py",  # 97
    "test_readme_commands.py",  # 90
    "test_msg_unet.py",  # 88
    "test_strategies.py",  # 85
    "test_single_images.py",  # 80
    "test_modified_pix2pix.py",  # 68
    "test_benchmarks.py",  # 66
    "test_grit.py",  # 64
    "test_export.py",  # 64
    "test_superres.py",  # 63
    "test_evaluate_suite.py",  # 62
    "test_eval_mode.py",  # 59
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order within a file is kept
