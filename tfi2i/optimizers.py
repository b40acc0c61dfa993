"""`TorchAdam`: Adam with `torch.optim.Adam`'s update, for recipes whose reference is PyTorch.

Keras' Adam folds the bias corrections into the step size and adds epsilon
(default 1e-7) to ``sqrt(v_t)``, the *uncorrected* second moment::

    keras:  p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m_t / (sqrt(v_t) + eps)
    torch:  p -= lr / (1 - b1^t) * m_t / (sqrt(v_t) / sqrt(1 - b2^t) + eps),  eps = 1e-8

The two agree while ``sqrt(v_t)`` is large against eps, and differ when a
gradient is small (early steps, or layers with tiny gradients): Keras' eps is
effectively ``1e-7 / sqrt(1 - b2^t)`` in torch's units, ~30x larger at t = 1.
`TorchAdam` keeps Keras' variables (``momentum``, ``velocity``, the step
counter), so it checkpoints, restores, wraps in
``keras.optimizers.LossScaleOptimizer``, compiles under XLA and runs under
``tf.distribute`` exactly as ``keras.optimizers.Adam`` does; only
`update_step` differs.

Reference: torch/optim/adam.py (``_single_tensor_adam``, non-amsgrad);
Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, Alg. 1.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfi2i")
class TorchAdam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` whose update is ``torch.optim.Adam``'s (``eps`` default 1e-8, added after bias correction).

    Takes Keras Adam's arguments (``learning_rate`` may be a schedule); no
    ``amsgrad``.
    """

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8, name="adam", **kwargs):
        if kwargs.get("amsgrad"):
            raise ValueError("TorchAdam has no amsgrad variant")
        kwargs.pop("amsgrad", None)
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, name=name, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        """torch: ``m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)``."""
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        beta_1 = ops.cast(self.beta_1, dtype)
        beta_2 = ops.cast(self.beta_2, dtype)
        bias_correction1 = 1 - ops.power(beta_1, step)
        bias_correction2_sqrt = ops.sqrt(1 - ops.power(beta_2, step))

        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - beta_1))  # torch: m.lerp_(g, 1 - b1)
        self.assign(v, ops.add(ops.multiply(v, beta_2), ops.multiply(ops.square(gradient), 1 - beta_2)))
        denom = ops.add(ops.divide(ops.sqrt(v), bias_correction2_sqrt), ops.cast(self.epsilon, dtype))
        self.assign_sub(variable, ops.multiply(ops.divide(lr, bias_correction1), ops.divide(m, denom)))


def make_adam(kind, learning_rate, beta_1, beta_2):
    """``torch`` -> `TorchAdam` (PyTorch references); ``keras`` -> ``keras.optimizers.Adam`` (its defaults)."""
    if kind == "torch":
        return TorchAdam(learning_rate, beta_1=beta_1, beta_2=beta_2)
    if kind == "keras":
        return keras.optimizers.Adam(learning_rate, beta_1=beta_1, beta_2=beta_2)
    raise ValueError(f"unknown Adam '{kind}'; valid: torch, keras")
