"""Helpers shared by test modules (fixtures live in conftest.py)."""

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def load_recipe(name):
    """``recipes/<name>.py`` as a module (recipes are scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def demo_cache(tmp_path_factory) -> pathlib.Path:
    """The tests' demo-data cache (``$TFI2I_CACHE``), shared by all ``pytest -n N`` workers of one session.

    Each demo set is generated once per session instead of once per worker (the 256x256 pix2pix demo alone
    takes ~15 s); `tfi2i.data.demo` locks a set while it generates it, so workers wait for each other.
    """
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "tfi2i_cache"


def shared_data_dir() -> pathlib.Path:
    """Real test data: `$TFI2I_SHARED_DATA`, else `../shared/data` next to the repository."""
    return pathlib.Path(os.environ.get("TFI2I_SHARED_DATA", REPO.parent / "shared" / "data"))


def facade_photos(n=3):
    """The left halves (photos, RGB uint8) of the first `n` CMP Facades JPEGs; skips when the data is absent."""
    import cv2

    folder = shared_data_dir() / "facades_train"
    if not folder.is_dir():
        pytest.skip(f"real-photo check needs CMP Facades JPEGs in {folder} "
                    "(set TFI2I_SHARED_DATA to the folder that contains facades_train/)")
    files = sorted(folder.glob("*.jpg"))[:n]
    if not files:
        pytest.skip(f"no *.jpg files in {folder}")
    photos = []
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        assert img is not None, f"cannot read {f}"
        photos.append(cv2.cvtColor(img[:, : img.shape[1] // 2], cv2.COLOR_BGR2RGB))
    return photos


def killed_copy(workdir, step, dest):
    """A copy of finished run ``workdir`` as a run killed right after its checkpoint at ``step`` would leave it.

    Checkpoints after ``step`` are removed and the ``checkpoint`` index names
    ``ckpt-<step>`` as the latest; metrics, samples and logs of later steps stay
    (a kill lands after them), so resuming must truncate and redo them. One
    uninterrupted run thus serves as both the reference and the killed run of a
    bit-exact resume test.
    """
    import re
    import shutil

    import tensorflow as tf

    shutil.copytree(workdir, dest)
    ckpt = pathlib.Path(dest) / "checkpoints"
    kept = []
    for p in sorted(ckpt.glob("ckpt-*.index"), key=lambda p: int(re.findall(r"\d+", p.name)[0])):
        n = int(re.findall(r"\d+", p.name)[0])
        if n > step:
            for f in ckpt.glob(f"ckpt-{n}.*"):
                f.unlink()
        else:
            kept.append(f"ckpt-{n}")
    assert kept and kept[-1] == f"ckpt-{step}", f"{workdir} has no checkpoint at step {step}: {kept}"
    tf.compat.v1.train.update_checkpoint_state(str(ckpt), kept[-1], all_model_checkpoint_paths=kept)
    return pathlib.Path(dest)


def waits_for(op, name) -> bool:
    """Whether graph op ``op`` depends, through data or control inputs, on an op named ``name``."""
    seen, todo = set(), [op]
    while todo:
        current = todo.pop()
        for parent in [t.op for t in current.inputs] + list(current.control_inputs):
            if parent.name == name:
                return True
            if parent.name not in seen:
                seen.add(parent.name)
                todo.append(parent)
    return False
