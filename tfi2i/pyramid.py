"""The PAN feature pyramid (Li et al., "Perceptual Adversarial Networks With A
Feature Pyramid for Image Translation", Eq. 2), as plain graph ops.

* ``d`` = `downsample`: Gaussian blur with the 5x5 binomial kernel
  ``[1, 4, 6, 4, 1] / 16`` (separable, applied as two depthwise convolutions;
  borders REFLECT-padded with ``tf.pad``, so a constant image stays constant)
  followed by nearest-neighbour halving (every second pixel, starting at 0).
  The paper says "downsampled ... and get blurred" and "nearest neighbor
  interpolation ... for downsampling"; the blur kernel is Burt & Adelson's
  (the paper's ref. 15), its size is our choice.
* ``u`` = `upsample`: bicubic resize to the finer level's size, equal to
  ``tf.image.resize(method="bicubic")`` (Keys a = -0.5, half-pixel centres,
  no antialiasing), computed as two matrix products with TF's own
  interpolation weights (`bicubic_matrix`) because ``ResizeBicubic`` has no
  XLA kernel; dynamic sizes fall back to ``tf.image.resize``.
* `smooth_pyramid`: ``[p_0, ..., p_L]`` with ``p_0 = I`` and
  ``p_{k+1} = d(p_k)`` (size ``H / 2^k``).
* `high_frequency`: ``h_k = p_k - u(p_{k+1})``, ``k = 0 .. L-1`` (Eq. 2), so
  ``p_k = h_k + u(p_{k+1})`` exactly (up to float rounding).

Every function takes ``[B, H, W, C]`` or a single image ``[H, W, C]`` (a
tf.data map before batching) and works in eager mode, in ``tf.function`` and
under XLA (``jit_compile=True``). Odd sizes round up when halving
(``ceil(H / 2)``) and `upsample` takes the exact target size.
"""

import tensorflow as tf

#: The 1-D binomial (Burt-Adelson) kernel of the blur.
BINOMIAL_5 = (1.0, 4.0, 6.0, 4.0, 1.0)


def _batched(fn):
    """Lets ``fn`` (written for ``[B, H, W, C]``) also take ``[H, W, C]``."""

    def wrapper(image, *args, **kwargs):
        image = tf.convert_to_tensor(image)
        if image.shape.rank == 3:
            return fn(image[tf.newaxis], *args, **kwargs)[0]
        return fn(image, *args, **kwargs)

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


def blur(image):
    """5x5 binomial blur (separable ``[1,4,6,4,1]/16``), REFLECT padding, same size and dtype."""
    return _batched(_blur)(image)


def _blur(p):
    dtype = p.dtype
    channels = p.shape[-1] if p.shape[-1] is not None else tf.shape(p)[-1]
    k = tf.constant(BINOMIAL_5, dtype=dtype) / tf.constant(16.0, dtype=dtype)
    kx = tf.tile(tf.reshape(k, [1, 5, 1, 1]), [1, 1, channels, 1])  # [kh, kw, C, 1]
    ky = tf.tile(tf.reshape(k, [5, 1, 1, 1]), [1, 1, channels, 1])
    p = tf.pad(p, [[0, 0], [2, 2], [2, 2], [0, 0]], mode="REFLECT")
    p = tf.nn.depthwise_conv2d(p, kx, strides=[1, 1, 1, 1], padding="VALID")
    return tf.nn.depthwise_conv2d(p, ky, strides=[1, 1, 1, 1], padding="VALID")


@_batched
def downsample(p):
    """``d(p)``: binomial blur, then nearest-neighbour halving (pixels 0, 2, 4, ...)."""
    return _blur(p)[:, ::2, ::2, :]


@_batched
def upsample(p, size):
    """``u(p)``: bicubic resize of ``p`` to ``size`` = (H, W) of the finer level (no antialias).

    With static sizes (the usual case: fixed crops) this is two matrix
    products with `bicubic_matrix`, equal to ``tf.image.resize(p, size,
    "bicubic")`` (TF has no XLA kernel for ``ResizeBicubic``); with dynamic
    sizes it calls ``tf.image.resize`` (fine in tf.data, not under XLA).
    """
    in_h, in_w = p.shape[1], p.shape[2]
    static = all(isinstance(s, int) for s in (in_h, in_w, *size))
    if not static:
        return tf.cast(tf.image.resize(p, size, method="bicubic", antialias=False), p.dtype)
    mh = tf.constant(bicubic_matrix(in_h, int(size[0])), dtype=p.dtype)
    mw = tf.constant(bicubic_matrix(in_w, int(size[1])), dtype=p.dtype)
    out = tf.einsum("oh,bhwc->bowc", mh, p)
    return tf.einsum("pw,bowc->bopc", mw, out)


def bicubic_matrix(in_size, out_size, a=-0.5):
    """``[out_size, in_size]`` weights of TF's ``ResizeBicubic`` (half-pixel centres, Keys ``a = -0.5``).

    TF's rule: source coordinate ``(i + 0.5) * in/out - 0.5``, four taps;
    taps outside the image get weight 0 and the rest are renormalized to sum 1.
    """
    import numpy as np

    def keys(x):
        x = abs(x)
        if x <= 1:
            return (a + 2) * x**3 - (a + 3) * x**2 + 1
        if x < 2:
            return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
        return 0.0

    scale = in_size / out_size
    m = np.zeros((out_size, in_size), np.float64)
    for i in range(out_size):
        src = (i + 0.5) * scale - 0.5
        base = int(np.floor(src))
        t = src - base
        for off in (-1, 0, 1, 2):
            j = base + off
            if 0 <= j < in_size:
                m[i, j] += keys(off - t)
        m[i] /= m[i].sum()
    return m.astype(np.float32)


def smooth_pyramid(image, levels=3):
    """``[p_0, ..., p_levels]``: ``p_0 = image``, ``p_{k+1} = d(p_k)``."""
    out = [tf.convert_to_tensor(image)]
    for _ in range(levels):
        out.append(downsample(out[-1]))
    return out


def high_frequency(image, levels=3, pyramid=None):
    """``[h_0, ..., h_{levels-1}]``, ``h_k = p_k - u(p_{k+1})`` (Eq. 2).

    Args:
      pyramid: an already computed ``smooth_pyramid(image, levels)`` (reused).
    """
    p = pyramid if pyramid is not None else smooth_pyramid(image, levels)
    return [p[k] - upsample(p[k + 1], _size(p[k])) for k in range(levels)]


def _size(t):
    rank = t.shape.rank
    h, w = (t.shape[rank - 3], t.shape[rank - 2])
    if h is None or w is None:
        dyn = tf.shape(t)
        h, w = dyn[rank - 3], dyn[rank - 2]
    return (h, w)
