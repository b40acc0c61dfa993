"""Weight initialisation of the pix2pix reference (junyanz `init_weights(init_type="normal")`)."""

import keras


def conv_init(seed=None):
    """Conv / transposed-conv kernels ~ N(0, 0.02); biases are zero."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02, seed=seed)


def gamma_init(seed=None):
    """BatchNorm scale ~ N(1, 0.02), offset 0 (reference `init.normal_(m.weight, 1.0, 0.02)`)."""
    return keras.initializers.RandomNormal(mean=1.0, stddev=0.02, seed=seed)
