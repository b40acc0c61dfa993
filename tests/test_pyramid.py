"""The PAN feature pyramid (Eq. 2): reconstruction, shapes, band-pass, nearest halving, tf.data and XLA."""

import numpy as np
import tensorflow as tf

from tfi2i import pyramid as P


def test_reconstruction_and_shapes():
    x = tf.random.stateless_uniform([2, 64, 48, 3], seed=[1, 2], minval=-1, maxval=1)
    p, h = P.smooth_pyramid(x, 3), P.high_frequency(x, 3)
    assert [t.shape for t in p] == [(2, 64 // 2**k, 48 // 2**k, 3) for k in range(4)]
    assert [t.shape for t in h] == [(2, 64 // 2**k, 48 // 2**k, 3) for k in range(3)]
    for k in range(3):
        np.testing.assert_allclose(h[k] + P.upsample(p[k + 1], p[k].shape[1:3]), p[k], atol=1e-6)


def test_constant_image_has_no_high_frequencies():
    c = tf.fill([1, 32, 32, 3], 0.37)
    for h in P.high_frequency(c, 3):
        assert float(tf.reduce_max(tf.abs(h))) < 1e-6
    np.testing.assert_allclose(P.blur(c), c, atol=1e-6)


def test_nearest_downsampling_of_a_4x4_example():
    # a 4x4 image that is constant along rows -> blur keeps each column (reflect padding), rows vary
    col = np.array([0.0, 1.0, 2.0, 3.0], np.float32)
    img = np.tile(col[None, :, None], [4, 1, 1])  # [4, 4, 1], value = column index
    # 1-D blur with reflect padding of [0,1,2,3]: padded [2,1,0,1,2,3,2,1]
    padded = np.array([2, 1, 0, 1, 2, 3, 2, 1], np.float64)
    k = np.array([1, 4, 6, 4, 1]) / 16
    blurred = np.array([padded[i:i + 5] @ k for i in range(4)])
    expected = np.tile(blurred[[0, 2]][None, :, None], [2, 1, 1])  # every second pixel from 0
    np.testing.assert_allclose(P.downsample(img), expected, atol=1e-6)


def test_upsample_equals_tf_bicubic():
    p = tf.random.stateless_uniform([2, 9, 6, 3], seed=[3, 4])
    np.testing.assert_allclose(P.upsample(p, (18, 12)), tf.image.resize(p, (18, 12), "bicubic"), atol=1e-5)


def test_tf_data_and_xla():
    x = tf.random.stateless_uniform([2, 32, 32, 3], seed=[5, 6])
    eager = P.high_frequency(x, 3)
    ds = tf.data.Dataset.from_tensor_slices(x).map(lambda i: tuple(P.high_frequency(i, 3))).batch(2)
    for a, b in zip(next(iter(ds)), eager):
        np.testing.assert_allclose(a, b, atol=1e-5)
    jit = tf.function(lambda t: P.high_frequency(t, 3), jit_compile=True)(x)
    for a, b in zip(jit, eager):
        np.testing.assert_allclose(a, b, atol=1e-5)
