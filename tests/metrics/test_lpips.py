"""LPIPS is an optional extra (the reference `lpips` package): its clear error when absent."""

import importlib.util

import numpy as np
import pytest

from tfi2i.metrics import LPIPS, LPIPSUnavailableError

HINT = "pip install 'tfi2i[lpips]' (installs lpips, torch, torchvision)"


@pytest.mark.skipif(importlib.util.find_spec("lpips") is not None, reason="lpips is installed here")
def test_unavailable_error_in_this_environment():
    with pytest.raises(LPIPSUnavailableError) as info:
        LPIPS()
    msg = str(info.value)
    assert HINT in msg
    assert "TORCH_HOME" in msg and "AlexNet" in msg
    assert isinstance(info.value, ImportError)


@pytest.mark.parametrize("missing", ["lpips", "torch", "torchvision"])
def test_unavailable_error_names_the_missing_package(monkeypatch, missing):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == missing else real_find_spec("numpy")
    )
    with pytest.raises(LPIPSUnavailableError, match=r"pip install 'tfi2i\[lpips\]'") as info:
        LPIPS(net="alex")
    assert str(info.value).split("not installed: ")[1].startswith(f"{missing}. ")


def test_unknown_net_rejected():
    with pytest.raises(ValueError, match="alex"):
        LPIPS(net="resnet")


def test_input_conversion_to_lpips_convention():
    x = np.random.default_rng(0).random((2, 5, 7, 3)).astype(np.float32)
    t = LPIPS._to_nchw_minus1_1(x, "a")
    assert t.shape == (2, 3, 5, 7) and t.dtype == np.float32
    np.testing.assert_allclose(t, x.transpose(0, 3, 1, 2) * 2 - 1, rtol=1e-6)
    grey = LPIPS._to_nchw_minus1_1(x[..., :1], "a")
    assert grey.shape == (2, 3, 5, 7) and np.array_equal(grey[:, 0], grey[:, 2])
    with pytest.raises(TypeError, match="floating-point"):
        LPIPS._to_nchw_minus1_1((x * 255).astype(np.uint8), "a")
    with pytest.raises(ValueError, match="1 or 3 channels"):
        LPIPS._to_nchw_minus1_1(x[..., :2], "a")
