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
