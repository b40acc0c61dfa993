"""Padding layers matching PyTorch's (``nn.ReflectionPad2d``)."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfi2i")
class ReflectionPad2D(keras.layers.Layer):
    """``nn.ReflectionPad2d(padding)`` on NHWC tensors: ``tf.pad(mode="REFLECT")``.

    Reflection excludes the edge pixel (``[a, b, c]`` padded by 1 is ``[b, a, b,
    c, b]``), as in PyTorch; each padding must be smaller than the padded
    dimension.

    Args:
      padding: an int (all four sides), or ``((top, bottom), (left, right))``.
    """

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(padding, int):
            padding = ((padding, padding), (padding, padding))
        (top, bottom), (left, right) = padding
        self.padding = ((int(top), int(bottom)), (int(left), int(right)))

    def call(self, inputs):
        (top, bottom), (left, right) = self.padding
        return tf.pad(inputs, [[0, 0], [top, bottom], [left, right], [0, 0]], mode="REFLECT")

    def compute_output_shape(self, input_shape):
        (top, bottom), (left, right) = self.padding
        b, h, w, c = input_shape
        return (b, None if h is None else h + top + bottom, None if w is None else w + left + right, c)

    def get_config(self):
        config = super().get_config()
        config["padding"] = [list(p) for p in self.padding]
        return config
