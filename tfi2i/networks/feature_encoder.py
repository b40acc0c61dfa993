"""pix2pixHD's instance-feature encoder E (Wang et al. 2018; NVIDIA ``networks.Encoder``).

`feature_encoder` is layer for layer NVIDIA's ``Encoder.model``
(``nn.Sequential``; indices are the state-dict keys, our layer names replace the
dot by an underscore, ``model.1`` -> ``model_1``):

* ``0`` ReflectionPad(3), ``1`` Conv 7x7 ``nef``, ``2`` norm, ``3`` ReLU;
* ``n_downsample`` times: Conv 3x3 stride 2 to twice the channels, PyTorch
  ``padding=1`` = explicit symmetric zero pad 1 (``model_<i>_pad``) then a
  VALID conv (Keras ``"same"`` would pad 0 on top/left and 1 at bottom/right
  for even sizes), norm, ReLU;
* ``n_downsample`` times: ``ConvTranspose2d(k3, s2, padding=1,
  output_padding=1)`` to half the channels, norm, ReLU. That transposed conv
  equals Keras ``Conv2DTranspose(3, strides=2, padding="valid")`` (size
  ``2H + 1``) with the first row and column dropped (``model_<i>_crop``);
  kernels map as ``torch_weight[in, out, kh, kw] -> keras[kh, kw, out, in]``
  (no flip; tested against a loop implementation of PyTorch's definition);
* ReflectionPad(3), Conv 7x7 ``feat_num``, tanh.

Every conv carries a bias (NVIDIA's ``Encoder`` does, whatever the norm).
Init as NVIDIA ``weights_init``: kernels ~ N(0, 0.02); biases keep PyTorch's
default ``U(+-1/sqrt(fan_in))`` (`tfi2i.layers.torch_bias_init`).

`instance_average` is the instance-wise average pooling of
``Encoder.forward``: the encoder's output replaced, per example, instance and
channel, by its mean over the instance's pixels. E is trained end to end
through it (the gradient flows to every pixel of an instance, 1/n each).

Parameter count (nef 16, n_downsample 4, feat_num 3, instance norm):
788,803 (arithmetic in ``tests/networks/test_feature_encoder.py``).
"""

import keras
import tensorflow as tf

from tfi2i.layers import ReflectionPad2D, conv_init, make_norm, torch_bias_init
from tfi2i.layers.transposed import Conv2DTranspose


def feature_encoder(feat_num=3, nef=16, n_downsample=4, norm="instance", name="E", input_channels=3) -> keras.Model:
    """Builds pix2pixHD's feature encoder E (NVIDIA ``Encoder(input_nc, feat_num, nef, n_downsample_E, norm)``).

    Args:
      feat_num: output feature channels (NVIDIA ``--feat_num``, default 3).
      nef: filters of the first conv (NVIDIA ``--nef``, default 16).
      n_downsample: stride-2 down (and up) steps (NVIDIA ``--n_downsample_E``, default 4).
      norm: ``instance`` (NVIDIA default) | ``batch`` | ``none`` (`tfi2i.layers.make_norm`).
      name: the Keras model's name.
      input_channels: channels of the image (NVIDIA: ``output_nc``, 3).

    Returns:
      A ``keras.Model`` on ``{"image": float32 [B, H, W, input_channels]}`` (a
      photo in [-1, 1]) returning the per-pixel features ``float32 [B, H, W,
      feat_num]`` in (-1, 1) (tanh, kept float32), *before* instance averaging
      (apply `instance_average`, as NVIDIA's ``Encoder.forward`` does). H and W
      must be multiples of ``2 ** n_downsample`` for the output to have the
      input's size, and each must exceed 3 (reflection padding).
    """
    if n_downsample < 0:
        raise ValueError(f"n_downsample must be >= 0, got {n_downsample}")

    def conv(filters, kernel, in_channels, index, strides=1):
        return keras.layers.Conv2D(
            filters, kernel, strides=strides, padding="valid", kernel_initializer=conv_init(),
            bias_initializer=torch_bias_init(in_channels * kernel * kernel), name=f"model_{index}",
        )

    def deconv(filters, index):
        # PyTorch's ConvTranspose2d fan_in is weight.size(1) * k * k = out_channels * 9.
        return Conv2DTranspose(
            filters, 3, strides=2, padding="valid", kernel_initializer=conv_init(),
            bias_initializer=torch_bias_init(filters * 9), name=f"model_{index}",
        )

    image = keras.Input(shape=(None, None, input_channels), name="image")
    h = ReflectionPad2D(3, name="model_0")(image)
    h = conv(nef, 7, input_channels, 1)(h)
    h = make_norm(norm, "model_2")(h)
    h = keras.layers.ReLU(name="model_3")(h)
    index = 4
    channels = nef
    for _ in range(n_downsample):
        h = keras.layers.ZeroPadding2D(1, name=f"model_{index}_pad")(h)
        h = conv(channels * 2, 3, channels, index, strides=2)(h)
        h = make_norm(norm, f"model_{index + 1}")(h)
        h = keras.layers.ReLU(name=f"model_{index + 2}")(h)
        channels *= 2
        index += 3
    for _ in range(n_downsample):
        h = deconv(channels // 2, index)(h)
        h = keras.layers.Cropping2D(((1, 0), (1, 0)), name=f"model_{index}_crop")(h)
        h = make_norm(norm, f"model_{index + 1}")(h)
        h = keras.layers.ReLU(name=f"model_{index + 2}")(h)
        channels //= 2
        index += 3
    h = ReflectionPad2D(3, name=f"model_{index}")(h)
    h = conv(feat_num, 7, channels, index + 1)(h)
    features = keras.layers.Activation("tanh", dtype="float32", name=f"model_{index + 2}")(h)
    return keras.Model(inputs={"image": image}, outputs=features, name=name)


def instance_average(features, ids):
    """Instance-wise average pooling (NVIDIA ``Encoder.forward``'s loop), in graph- and XLA-compatible TF ops.

    Args:
      features: float ``[B, H, W, C]``.
      ids: integer instance ids ``[B, H, W, 1]`` (or ``[B, H, W]``); any values
        (Cityscapes' ``26001`` included): they are renumbered densely.

    Returns:
      ``[B, H, W, C]``, features' dtype: every pixel holds the mean, over the
      pixels of its example with the same id, of each channel (computed in
      float32). Differentiable w.r.t. ``features`` (segment sums + ``gather``).

    How: each (example, id) pair becomes one int64 key; the keys are sorted
    and numbered by a cumulative sum over changes (a static-size stand-in for
    ``tf.unique``, whose dynamic output size XLA cannot compile); the means
    come from ``unsorted_segment_sum`` over at most ``B * H * W`` segments.
    """
    features = tf.convert_to_tensor(features)
    shape = tf.shape(features)
    b, h, w, c = shape[0], shape[1], shape[2], shape[3]
    n = b * h * w
    ids = tf.reshape(tf.cast(ids, tf.int64), [b, h * w])
    # One key per (example, id): offset each example's ids past the previous example's.
    low = tf.reduce_min(ids)
    span = tf.reduce_max(ids) - low + 1
    keys = tf.reshape((ids - low) + tf.range(tf.cast(b, tf.int64), dtype=tf.int64)[:, None] * span, [-1])
    order = tf.argsort(keys, stable=True)
    ordered = tf.gather(keys, order)
    starts = tf.concat([tf.zeros([1], tf.int32), tf.cast(ordered[1:] != ordered[:-1], tf.int32)], axis=0)
    segments = tf.scatter_nd(order[:, None], tf.cumsum(starts), [n])  # dense segment id of every pixel
    flat = tf.cast(tf.reshape(features, [-1, c]), tf.float32)
    sums = tf.math.unsorted_segment_sum(flat, segments, num_segments=n)
    counts = tf.math.unsorted_segment_sum(tf.ones([n, 1], tf.float32), segments, num_segments=n)
    means = sums / tf.maximum(counts, 1.0)
    pooled = tf.gather(means, segments)
    return tf.cast(tf.reshape(pooled, shape), features.dtype)
