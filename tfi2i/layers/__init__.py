"""Reusable Keras layers: normalization, initializers and conv blocks shared by the networks."""

from tfi2i.layers.normalization import make_norm, use_bias_for
from tfi2i.layers.init import conv_init, gamma_init, torch_bias_init
from tfi2i.layers.padding import ReflectionPad2D

__all__ = ["make_norm", "use_bias_for", "conv_init", "gamma_init", "torch_bias_init", "ReflectionPad2D"]
