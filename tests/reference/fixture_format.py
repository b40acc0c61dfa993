"""NumPy-only helpers shared by the fixture script (torch side) and the tests (TensorFlow side).

* `initial_state`: the reference's ``init_weights(init_type="normal",
  init_gain=0.02)`` (models/networks.py: conv weights ~ N(0, 0.02), biases 0,
  BatchNorm2d weight ~ N(1, 0.02), bias 0; fresh running stats 0 / 1) drawn
  from a seeded NumPy generator instead of torch's, so the fixtures need not
  store the initial weights: both sides regenerate them bit for bit from the
  key list, shapes and kinds the fixture records.
* `sample`: how a large tensor is stored: tensors up to `CAP` values in full,
  larger ones as `CAP` fixed random positions of the flattened PyTorch-layout
  tensor (gradients: plus the L2 norm), which keeps each fixture to a few hundred KB.

pix2pixHD (make_pix2pixhd_fixtures.py) adds two kinds: ``torch_bias:<fan_in>``
(PyTorch's default conv bias, ``U(+-1/sqrt(fan_in))``, which NVIDIA's
``weights_init`` leaves in place) and ``kaiming_fan_out`` (torchvision's VGG
init, ``N(0, sqrt(2 / (out * kh * kw)))``), and a smaller ``cap`` per tensor.
"""

import numpy as np

CAP = 1024
KINDS = ("conv_weight", "bias", "bn_weight", "bn_bias", "running_mean", "running_var")


def initial_state(keys, shapes, kinds, seed):
    """``{key: float32 array}`` in PyTorch layout, drawn in the order of `keys`."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, shape, kind in zip(keys, shapes, kinds):
        shape = tuple(int(s) for s in shape)
        kind = str(kind)
        if kind == "conv_weight":
            out[key] = rng.normal(0.0, 0.02, shape).astype(np.float32)
        elif kind == "bn_weight":
            out[key] = rng.normal(1.0, 0.02, shape).astype(np.float32)
        elif kind in ("bias", "bn_bias", "running_mean"):
            out[key] = np.zeros(shape, np.float32)
        elif kind == "running_var":
            out[key] = np.ones(shape, np.float32)
        elif kind.startswith("torch_bias:"):
            bound = 1.0 / np.sqrt(float(kind.split(":", 1)[1]))
            out[key] = rng.uniform(-bound, bound, shape).astype(np.float32)
        elif kind == "kaiming_fan_out":
            out[key] = rng.normal(0.0, np.sqrt(2.0 / (shape[0] * int(np.prod(shape[2:])))), shape).astype(np.float32)
        else:
            raise ValueError(f"unknown kind {kind!r}")
    return out


def sample(array, cap=CAP):
    """The stored form of a PyTorch-layout tensor: all values up to `cap`, else a strided sample."""
    flat = np.asarray(array, np.float32).ravel()
    if flat.size <= cap:
        return flat
    return flat[sample_indices(flat.size, cap)]


def sample_indices(size, cap=CAP):
    """`CAP` distinct positions of a flattened tensor of `size` values, fixed by `size` (a regular stride
    would alias with the kernel layout, e.g. only ever pick tap (0, 0))."""
    return np.sort(np.random.default_rng(size).choice(size, cap, replace=False))
