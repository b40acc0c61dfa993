"""Weight initialisation of the pix2pix reference (junyanz `init_weights(init_type="normal")`)."""

import math

import keras


def conv_init(seed=None):
    """Conv / transposed-conv kernels ~ N(0, 0.02); biases are zero."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02, seed=seed)


def gamma_init(seed=None):
    """BatchNorm scale ~ N(1, 0.02), offset 0 (reference `init.normal_(m.weight, 1.0, 0.02)`)."""
    return keras.initializers.RandomNormal(mean=1.0, stddev=0.02, seed=seed)


def torch_bias_init(fan_in, seed=None):
    """PyTorch's default conv bias init: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.

    What ``nn.Conv2d`` / ``nn.ConvTranspose2d`` ``reset_parameters`` leave in
    ``bias`` when, as in NVIDIA pix2pixHD's ``weights_init``, only the kernel is
    re-initialised. PyTorch takes ``fan_in`` from weight dimension 1, so:

    * ``Conv2d(in, out, k)``: ``fan_in = in * k * k``;
    * ``ConvTranspose2d(in, out, k)`` (weight ``[in, out, k, k]``): ``fan_in = out * k * k``.
    """
    fan_in = int(fan_in)
    if fan_in <= 0:
        raise ValueError(f"fan_in must be positive, got {fan_in}")
    bound = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(minval=-bound, maxval=bound, seed=seed)
