"""70x70 PatchGAN discriminator (pix2pix; junyanz `NLayerDiscriminator`).

``Conv 4x4/2 (bias) -> LReLU(0.2)``, then ``n_layers - 1`` stride-2 and one
stride-1 ``Conv 4x4 -> norm -> LReLU(0.2)`` with filters ``ndf * min(2**n, 8)``,
then ``Conv 4x4/1 -> 1`` logit per patch. Every conv pads by 1 with zeros
(PyTorch ``padding=1``), so a 256x256 input gives a 30x30 patch map. Weights
~ N(0, 0.02). Reference counts with 6 input channels: 2,768,705 (batch norm)
and 2,767,809 (non-affine instance norm); tested.
"""

import keras

from tfi2i.layers import conv_init, make_norm, use_bias_for
from tfi2i.layers.conv import Conv2D


def patchgan_discriminator(
    input_channels=6, ndf=64, n_layers=3, norm="batch", synchronized_bn=True, name="D"
) -> keras.Model:
    """Builds D.

    Args:
      input_channels: channels of the judged tensor (x and y concatenated: 6).

    Returns:
      ``keras.Model``: float32 ``[B, H, W, input_channels]`` -> ``(features,
      logits)``: the ``n_layers + 1`` LeakyReLU activations (what the PAN
      perceptual loss and pix2pixHD's feature matching read) and the logits
      ``[B, H/8 - 2, W/8 - 2, 1]`` (float32). Every discriminator of the
      package returns this pair.
    """
    bias = use_bias_for(norm)
    inp = keras.Input(shape=(None, None, input_channels), name="pair")

    def conv(h, filters, stride, layer_name, use_bias):
        h = keras.layers.ZeroPadding2D(1, name=f"{layer_name}_pad")(h)
        return Conv2D(
            filters, 4, strides=stride, padding="valid", use_bias=use_bias, kernel_initializer=conv_init(), name=layer_name
        )(h)

    features = []
    h = conv(inp, ndf, 2, "conv1", True)
    h = keras.layers.LeakyReLU(0.2, name="conv1_lrelu")(h)
    features.append(h)
    for n in range(1, n_layers + 1):
        stride = 2 if n < n_layers else 1
        h = conv(h, ndf * min(2**n, 8), stride, f"conv{n + 1}", bias)
        h = make_norm(norm, f"conv{n + 1}_norm", synchronized_bn)(h)
        h = keras.layers.LeakyReLU(0.2, name=f"conv{n + 1}_lrelu")(h)
        features.append(h)
    logits = conv(h, 1, 1, f"conv{n_layers + 2}", True)
    logits = keras.layers.Activation("linear", dtype="float32", name="logits")(logits)
    return keras.Model(inp, (features, logits), name=name)
