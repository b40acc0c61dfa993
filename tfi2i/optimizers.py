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

Under TensorFlow the update runs as one fused ``ResourceApplyAdam`` kernel per
variable (`_distributed_tf_update_step`). That kernel computes Keras' form,
``var -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps')``. With
``eps' = eps * sqrt(1 - b2^t)`` this is torch's update exactly (multiply
torch's denominator by ``sqrt(1 - b2^t)``); only float rounding differs.
Per-variable Python ops cost ~9 s of graph building and ~4 s of graph
optimisation for a 264-variable GAN; the fused form costs ~2 s and ~1 s
(``benchmarks/bench_optimizer.py``).

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

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8, name="adam", restartable=False,
                 **kwargs):
        if kwargs.get("amsgrad"):
            raise ValueError("TorchAdam has no amsgrad variant")
        kwargs.pop("amsgrad", None)
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, name=name, **kwargs)
        self.restartable = bool(restartable)

    def build(self, var_list):
        """Keras Adam's slots; a `restartable` optimizer also keeps the step at which it last restarted."""
        if self.built:
            return
        super().build(var_list)
        if self.restartable:
            self.restart_iteration = self.add_variable((), initializer="zeros", dtype="int64",
                                                       name="restart_iteration")

    def restart(self):
        """A fresh ``torch.optim.Adam`` from here on: moments zeroed, bias corrections counted from this step.

        What NVIDIA pix2pixHD's ``update_fixed_params`` does when it replaces
        the generator's optimizer after ``niter_fix_global`` epochs. The
        learning-rate schedule keeps following the run's step counter.
        Graph-safe (assignments only); needs ``restartable=True``.
        """
        if not self.restartable:
            raise ValueError("this TorchAdam was built without restartable=True")
        for slot in list(self._momentums) + list(self._velocities):
            slot.assign(ops.zeros_like(slot))
        self.restart_iteration.assign(ops.cast(self.iterations, "int64"))

    def update_step(self, gradient, variable, learning_rate):
        """torch: ``m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)``."""
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        iterations = self.iterations - self.restart_iteration if self.restartable else self.iterations
        step = ops.cast(iterations + 1, dtype)
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

    def _distributed_tf_update_step(self, distribution, grads_and_vars, learning_rate):
        """TF backend: the scalars once per step, then one fused ``ResourceApplyAdam`` per variable.

        Replaces Keras' per-variable `update_step` loop (``keras/src/backend/
        tensorflow/optimizer.py``); ``distribution.extended.update`` keeps the
        update on each replica's copy under ``tf.distribute``.
        """
        import tensorflow as tf

        iterations = self.iterations - self.restart_iteration if self.restartable else self.iterations
        step = tf.cast(iterations + 1, "float32")
        beta_1_power = tf.pow(tf.cast(self.beta_1, "float32"), step)
        beta_2_power = tf.pow(tf.cast(self.beta_2, "float32"), step)
        epsilon = self.epsilon * tf.sqrt(1.0 - beta_2_power)  # torch's eps in the kernel's (Keras') units

        def apply(var, grad, m, v, learning_rate):  # per replica: its own copies and learning rate
            if isinstance(grad, tf.IndexedSlices) or var.dtype != tf.float32:
                return self.update_step(grad, var, learning_rate)
            return tf.raw_ops.ResourceApplyAdam(
                var=var.handle, m=m.handle, v=v.handle, beta1_power=beta_1_power, beta2_power=beta_2_power,
                lr=tf.cast(learning_rate, "float32"), beta1=tf.cast(self.beta_1, "float32"),
                beta2=tf.cast(self.beta_2, "float32"), epsilon=epsilon, grad=tf.cast(grad, "float32"))

        for grad, var in grads_and_vars:
            index = self._get_variable_index(var)
            slots = (self._momentums[index].value, self._velocities[index].value)
            distribution.extended.update(var, apply, args=(grad, *slots, learning_rate), group=False)


    def get_config(self):
        return {**super().get_config(), "restartable": self.restartable}


def make_adam(kind, learning_rate, beta_1, beta_2, restartable=False):
    """``torch`` -> `TorchAdam` (PyTorch references); ``keras`` -> ``keras.optimizers.Adam`` (its defaults).

    ``restartable``: the optimizer can be restarted mid-run (`TorchAdam.restart`; ``torch`` only).
    """
    if kind == "torch":
        return TorchAdam(learning_rate, beta_1=beta_1, beta_2=beta_2, restartable=restartable)
    if restartable:
        raise ValueError("a restartable optimizer (pix2pixHD's niter_fix_global) needs optim.adam=torch")
    if kind == "keras":
        return keras.optimizers.Adam(learning_rate, beta_1=beta_1, beta_2=beta_2)
    raise ValueError(f"unknown Adam '{kind}'; valid: torch, keras")
