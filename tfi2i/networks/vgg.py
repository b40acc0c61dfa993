"""Frozen VGG-19 feature extractor for pix2pixHD's perceptual (``VGGLoss``) term.

:func:`vgg19_features` builds ``keras.applications.VGG19(include_top=False)``
truncated after ``block5_conv1`` and returns the five activations pix2pixHD's
``Vgg19`` slices end at (NVIDIA/pix2pixHD ``models/networks.py``;
torchvision ``vgg19().features[:2], [2:7], [7:12], [12:21], [21:30]``):

===========  =================  ==========================
pix2pixHD    Keras layer        shape for ``[B, H, W, 3]``
===========  =================  ==========================
relu1_1      ``block1_conv1``   ``[B, H, W, 64]``
relu2_1      ``block2_conv1``   ``[B, H/2, W/2, 128]``
relu3_1      ``block3_conv1``   ``[B, H/4, W/4, 256]``
relu4_1      ``block4_conv1``   ``[B, H/8, W/8, 512]``
relu5_1      ``block5_conv1``   ``[B, H/16, W/16, 512]``
===========  =================  ==========================

(Keras' conv layers carry their ReLU, so a layer's output is the ``relu*_1``
activation.) Thirteen 3x3 convolutions, 12,944,960 parameters (golden-tested), none
trainable: the model is frozen (``trainable=False``) and is always called with
``training=False``; gradients still flow through it to G(x). The loss itself is
:func:`tfi2i.losses.vgg_loss` (weights ``[1/32, 1/16, 1/8, 1/4, 1]``, L1, the
real image's features detached)::

    vgg = vgg19_features("imagenet")
    loss = losses.vgg_loss(vgg(y_fake), vgg(y))   # [B]; times lambda_feat = 10
    loss = vgg_l1_loss(vgg, y_fake, y, losses.VGG_LOSS_WEIGHTS)   # the same, with less training memory

Weights (:func:`tfi2i.pretrained.build_application`): ``"imagenet"`` (Keras'
``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`` in ``~/.keras/models``;
offline a clear error says how to provide it), a local ``.h5`` path, or
``None`` (random, for tests).

Deviations and choices:

* **The weights are not the paper's.** pix2pixHD uses torchvision's ImageNet
  VGG-19; Keras ships the original Caffe (Simonyan & Zisserman) VGG-19. Same
  architecture, different training run, so feature values (and the loss
  scale) differ; nothing here can make them equal without the torchvision
  weights converted to the Keras layout (then use ``input_mapping="none"``).
* **Input mapping.** tfi2i images are float32 in ``[-1, 1]``. pix2pixHD feeds
  ``[-1, 1]`` straight into torchvision's VGG-19, which was trained on
  ``(p - mean) / std`` of RGB ``p`` in [0, 1] (mean ``(0.485, 0.456, 0.406)``,
  std ``(0.229, 0.224, 0.225)``). So the network "sees" the image
  ``p = mean + std * x``: a lower-contrast (~0.46x) version of the picture,
  centred on the ImageNet mean. Keras' Caffe weights expect
  ``preprocess_input`` (BGR, 0..255, minus the Caffe mean): feeding them
  ``[-1, 1]`` raw would put inputs two orders of magnitude below their
  training range, where the conv biases dominate; that is not what the
  reference computes. Choices:

  - ``"pix2pixhd"`` (**default**, the faithful one): give the Caffe network
    the same picture the reference gives torchvision's,
    ``preprocess_input(255 * (mean + std * x))`` (per channel; about
    ``57.5 * x`` in BGR order, since the two means agree to 0.5/255). Only the
    weights differ from the reference, not what the network looks at.
  - ``"caffe"``: the textbook preprocessing of the actual picture,
    ``preprocess_input(127.5 * (x + 1))`` (full contrast), what a VGG loss
    written for Keras from scratch would do (and what NVIDIA's later
    imaginaire does with torchvision normalisation).
  - ``"none"``: ``x`` unchanged, for weights that expect pix2pixHD's raw feed
    (torchvision's VGG-19 converted to the Keras layout).
"""

import keras
import tensorflow as tf

from tfi2i.pretrained import KERAS_WEIGHTS, build_application

__all__ = [
    "INPUT_MAPPINGS",
    "VGG19_CONV_LAYERS",
    "VGG19_FEATURE_LAYERS",
    "VGGInputMapping",
    "vgg19_features",
]

VGG19_FEATURE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
"""Keras names of pix2pixHD's relu1_1, relu2_1, relu3_1, relu4_1, relu5_1."""
VGG19_CONV_LAYERS = tuple(f"block{b}_conv{c}" for b, n in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
                          for c in range(1, n + 1))
"""Every convolution of VGG-19 (16, each with its ReLU): MSG U-Net's perceptual loss reads them all (Eq. 1)."""
INPUT_MAPPINGS = ("pix2pixhd", "caffe", "none")

_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # keras.applications.imagenet_utils, mode "caffe"
_TORCH_MEAN_RGB = (0.485, 0.456, 0.406)  # torchvision ImageNet normalisation
_TORCH_STD_RGB = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package="tfi2i")
class VGGInputMapping(keras.layers.Layer):
    """``[B, H, W, 3]`` RGB in ``[-1, 1]`` -> VGG-19's input (see the module docstring for `mode`)."""

    def __init__(self, mode="pix2pixhd", **kwargs):
        super().__init__(**kwargs)
        if mode not in INPUT_MAPPINGS:
            raise ValueError(f"unknown VGG input mapping '{mode}'; valid: {INPUT_MAPPINGS}")
        self.mode = mode

    def call(self, x):
        x = tf.cast(x, tf.float32)
        if self.mode == "none":
            return x
        if self.mode == "pix2pixhd":  # the picture torchvision's VGG sees when fed [-1, 1]
            rgb = 255.0 * (tf.constant(_TORCH_MEAN_RGB) + tf.constant(_TORCH_STD_RGB) * x)
        else:  # "caffe": the picture itself
            rgb = 127.5 * (x + 1.0)
        return rgb[..., ::-1] - tf.constant(_CAFFE_MEAN_BGR)  # = keras.applications.vgg19.preprocess_input(rgb)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def vgg19_features(
    weights="imagenet", input_mapping="pix2pixhd", input_shape=(None, None, 3), name="vgg19_features", how_to_pass=None,
    layers=VGG19_FEATURE_LAYERS,
):
    """The frozen VGG-19 of pix2pixHD's ``VGGLoss``: images -> ``[relu1_1, ..., relu5_1]``.

    Args:
      weights: ``"imagenet"`` (Keras' cache ``~/.keras/models``; offline,
        `tfi2i.pretrained.WeightsUnavailableError` says how to provide the
        file), a local path to the no-top VGG-19 weights, or ``None`` (random).
      input_mapping: ``"pix2pixhd"`` (default), ``"caffe"`` or ``"none"``
        (module docstring, "Deviations and choices").
      input_shape: ``(H, W, 3)``; any size works (``None`` dimensions).
      name: the model's name.
      how_to_pass: how the user passes a weights path, for the offline error
        (a recipe with a ``--vgg-weights`` flag passes ``"--vgg-weights PATH"``);
        default ``vgg19_features(weights='/path/to/<file>')``.
      layers: the Keras layer names whose activations are returned, in order
        (default pix2pixHD's five; `VGG19_CONV_LAYERS`: all sixteen convolutions,
        MSG U-Net's). The network is truncated after the deepest one.

    Returns:
      A non-trainable ``keras.Model``: float ``[B, H, W, 3]`` RGB in ``[-1, 1]``
      -> list of float32 tensors, one per entry of `layers` (shapes in the module docstring).
    """
    vgg = build_application(
        "VGG19",
        weights,
        how_to_pass=how_to_pass or f"vgg19_features(weights='/path/to/{KERAS_WEIGHTS['VGG19'].file}')",
        input_shape=tuple(input_shape),
    )
    layers = tuple(layers)
    unknown = [n for n in layers if n not in VGG19_CONV_LAYERS]
    if not layers or unknown:
        raise ValueError(f"vgg19_features: layers must be VGG-19 convolutions ({', '.join(VGG19_CONV_LAYERS)}), "
                         f"got {list(layers)}")
    deepest = max(layers, key=VGG19_CONV_LAYERS.index)
    trunk_name = "vgg19_to_relu5_1" if deepest == "block5_conv1" else f"vgg19_to_{deepest}"
    trunk = keras.Model(vgg.input, [vgg.get_layer(n).output for n in layers], name=trunk_name)
    inp = keras.Input(shape=tuple(input_shape), name="image")
    feats = trunk(VGGInputMapping(input_mapping, name="input_mapping")(inp), training=False)
    model = keras.Model(inp, list(feats), name=name)
    model.trainable = False
    return model


def vgg_l1_loss(vgg, fake, real, weights=None, recompute=False):
    """``losses.feature_matching_loss(vgg(fake), vgg(real), weights)``, `[B]`, with a backward pass that waits.

    The same value and the same gradient for ``fake`` (the real image's
    features are constants either way; VGG's weights are frozen), from the
    same kernels (TensorFlow's ``Conv2DBackpropInput``, ``ReluGrad``,
    ``MaxPoolGrad``), summed in the same order up to float noise (tested).
    What changes is when the backward pass's tensors exist. Through autodiff
    each layer's loss gradient, ``w_l / n_l * sign(diff_l)`` (or the float
    difference it is made from), depends only on the forward pass and the
    constant ``dL/dloss``, so the graph executor makes all sixteen as soon as
    it can and keeps them until the backward pass reaches them: one more copy
    of VGG's sixteen ReLU outputs (2.3 GiB in float32 at 2048x1024, MSG U-Net's
    top scale). And the real image's pass, needing nothing from G, ran during
    G's forward pass and held its features until G's output caught up. Here
    both passes go layer by layer in lock-step (control dependencies), the
    forward pass keeps each layer's ReLU output (the backward pass needs it;
    with `recompute` only each block's input) and its sign as int8, and the
    backward pass walks the layers from the deepest, adding a layer's loss
    gradient to the gradient arriving from above, so it is made when needed
    and freed at once. MSG U-Net's 2048x1024 training step: README, "MSG U-Net".

    Args:
      vgg: a model from `vgg19_features` (input mapping, then the truncated VGG-19).
      fake, real: ``[B, H, W, 3]`` images in ``[-1, 1]``.
      weights: one per returned feature layer, as for `losses.feature_matching_loss`.
      recompute: keep only each block's input (the pooled activations) and
        recompute the block's convolutions when the backward pass reaches it
        (one more VGG pass over ``fake``; the same numbers).
    """
    mapping = next(layer for layer in vgg.layers if isinstance(layer, VGGInputMapping))
    trunk = next(layer for layer in vgg.layers if isinstance(layer, keras.Model))
    names = [t._keras_history[0].name for t in trunk.outputs]
    weights = [1.0] * len(names) if weights is None else list(weights)
    if len(weights) != len(names):
        raise ValueError(f"vgg_l1_loss: {len(weights)} weights for {len(names)} VGG feature layers")
    stack = [layer for layer in trunk.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.MaxPooling2D))]
    stack = stack[: max(i for i, layer in enumerate(stack) if layer.name in names) + 1]
    kernels = [(tf.convert_to_tensor(layer.kernel), tf.convert_to_tensor(layer.bias))
               if isinstance(layer, keras.layers.Conv2D) else None for layer in stack]
    weight_of = dict(zip(names, weights))

    def conv(layer, x, kernel, bias):
        dtype = layer.compute_dtype
        return tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(tf.cast(x, dtype), tf.cast(kernel, dtype), 1, "SAME"),
                                         tf.cast(bias, dtype)))

    def pool(x):
        return tf.nn.max_pool2d(x, 2, 2, "VALID")

    # blocks: a run of convolutions and the pooling after it; with `recompute` only their inputs are kept
    starts = [0] + [i + 1 for i in range(len(stack) - 1) if kernels[i] is None]
    blocks = list(zip(starts, starts[1:] + [len(stack)]))

    def forward(i, x):
        return conv(stack[i], x, *kernels[i]) if kernels[i] else pool(x)

    @tf.custom_gradient
    def lean(x, r):
        outs, losses_of, total = [], {}, tf.zeros([tf.shape(x)[0]], tf.float32)
        first, gate = x, [x]
        for i, layer in enumerate(stack):
            # lock-step: both images' layer i once layer i - 1's loss is taken (else the real image's pass, which
            # needs nothing from G, runs ahead and holds every feature until G's output reaches that layer)
            with tf.control_dependencies(gate):
                x, r = forward(i, x), forward(i, r)
            gate = [x, r]
            w = weight_of.get(layer.name, 0)
            if not (isinstance(w, (int, float)) and w == 0):
                diff = tf.cast(x, tf.float32) - tf.cast(r, tf.float32)
                total = total + tf.cast(w, tf.float32) * tf.reduce_mean(tf.abs(diff), axis=[1, 2, 3])
                losses_of[i] = (tf.cast(tf.sign(diff), tf.int8), tf.cast(w, tf.float32),
                                tf.cast(tf.reduce_prod(tf.shape(diff)[1:]), tf.float32))  # sign, w_l, n_l
                gate = [total, losses_of[i][0]]
            outs.append(x)

        def grad(dy):
            g, ys = None, dict(enumerate(outs))
            for start, end in reversed(blocks):
                before = first if start == 0 else outs[start - 1]
                if recompute:  # the block's activations again, once the backward pass has reached its output
                    with tf.control_dependencies([] if g is None else [g]):
                        h = tf.identity(before)
                    for i in range(start, end):
                        h = ys[i] = forward(i, h) if kernels[i] else ys[i]
                for i in reversed(range(start, end)):
                    x_in, y = (ys[i - 1] if i > start else before), ys[i]
                    if i in losses_of:  # autodiff's order: (dy * w_l) / n_l, broadcast, times sign(diff_l)
                        sign, w, n = losses_of[i]
                        with tf.control_dependencies([] if g is None else [g]):  # made when the pass gets here
                            own = tf.reshape((dy * w) / n, [-1, 1, 1, 1]) * tf.cast(sign, tf.float32)
                        own = tf.cast(own, y.dtype)
                        g = own if g is None else g + own
                    if g is None:
                        continue
                    if kernels[i]:
                        g = tf.raw_ops.ReluGrad(gradients=g, features=y)
                        g = tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x_in), out_backprop=g,
                                                           filter=tf.cast(kernels[i][0], y.dtype),
                                                           strides=[1, 1, 1, 1], padding="SAME")
                    else:
                        g = tf.raw_ops.MaxPoolGrad(orig_input=x_in, orig_output=y, grad=g, ksize=[1, 2, 2, 1],
                                                   strides=[1, 2, 2, 1], padding="VALID")
            return (tf.zeros_like(first) if g is None else tf.cast(g, first.dtype)), None

        return total, grad

    return lean(mapping(fake), tf.stop_gradient(mapping(real)))
