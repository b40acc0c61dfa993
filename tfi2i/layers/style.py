"""StyleGAN's two modulation layers: per-pixel noise injection and AdaIN from a style code.

* `NoiseInjection` (Karras et al. 2019, "B" in Fig. 1): ``features + w_c * noise``
  with one learnable weight per channel, initialised to 0 (a fresh network
  ignores its noise until training finds it useful); ``noise`` is a 1-channel
  map broadcast over the channels (StyleGAN's) or one map per channel.
* `AdaIN` (Huang & Belongie 2017, StyleGAN's "A"): instance normalisation
  (non-affine, eps 1e-5) of the features, then ``(1 + gamma(z)) * x + beta(z)``
  with ``gamma`` and ``beta`` one learned affine map of the style code ``z``
  per layer (kernel Glorot-uniform, bias 0: ``1 + gamma`` starts around 1).
* `StylePrior`: a Gaussian over style codes, ``z = mean + scale @ eps`` for
  ``eps ~ N(0, I)`` (``scale`` the Cholesky factor of the covariance), the
  parameters fitted to a trained style encoder's codes (`tfi2i.style_prior`).
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfi2i")
class NoiseInjection(keras.layers.Layer):
    """``[features, noise] -> features + weight * noise``; ``weight``: one per channel, init 0."""

    def build(self, input_shape):
        self.weight = self.add_weight(shape=(input_shape[0][-1],), initializer="zeros", name="weight")

    def call(self, inputs):
        features, noise = inputs
        return features + self.weight * tf.cast(noise, features.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@keras.saving.register_keras_serializable(package="tfi2i")
class AdaIN(keras.layers.Layer):
    """``[features [B,H,W,C], style [B,S]] -> (1 + gamma) * IN(features) + beta``, ``gamma, beta = Dense(style)``."""

    def __init__(self, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        channels, style_dim = int(input_shape[0][-1]), int(input_shape[1][-1])
        self.style_kernel = self.add_weight(shape=(style_dim, 2 * channels), initializer="glorot_uniform",
                                            name="style_kernel")
        self.style_bias = self.add_weight(shape=(2 * channels,), initializer="zeros", name="style_bias")

    def call(self, inputs):
        features, style = inputs
        mean, var = tf.nn.moments(features, axes=[1, 2], keepdims=True)
        normed = (features - mean) * tf.math.rsqrt(var + self.epsilon)
        params = tf.matmul(tf.cast(style, features.dtype), self.style_kernel) + self.style_bias
        gamma, beta = tf.split(params[:, None, None, :], 2, axis=-1)
        return (1.0 + gamma) * normed + beta

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="tfi2i")
class StylePrior(keras.layers.Layer):
    """``eps [B, S] -> mean + eps @ scale^T`` (N(mean, scale scale^T)); ``mean``, ``scale`` fixed (not trained)."""

    def __init__(self, style_dim, **kwargs):
        super().__init__(**kwargs)
        self.style_dim = int(style_dim)
        self.mean = self.add_weight(shape=(self.style_dim,), initializer="zeros", trainable=False, name="mean")
        self.scale = self.add_weight(shape=(self.style_dim, self.style_dim), initializer="identity",
                                     trainable=False, name="scale")

    def call(self, eps):
        return self.mean + tf.matmul(tf.cast(eps, self.scale.dtype), self.scale, transpose_b=True)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "style_dim": self.style_dim}
