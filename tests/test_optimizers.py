"""`tfi2i.optimizers.TorchAdam`: torch.optim.Adam's update, hand-computed; Keras' differs; it checkpoints."""

import numpy as np
import pytest
import keras
import tensorflow as tf

from tfi2i.optimizers import TorchAdam, make_adam


def torch_adam_numpy(p, grads, lr=2e-4, b1=0.5, b2=0.999, eps=1e-8):
    """torch.optim.Adam (torch/optim/adam.py, _single_tensor_adam) written out in float64 NumPy."""
    p = np.array(p, np.float64)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        step_size = lr / (1 - b1**t)
        denom = np.sqrt(v) / np.sqrt(1 - b2**t) + eps
        p = p - step_size * m / denom
    return p


def keras_adam_numpy(p, grads, lr=2e-4, b1=0.5, b2=0.999, eps=1e-7):
    p = np.array(p, np.float64)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        p = p - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
    return p


P0 = [0.5, -0.25, 1.0]
GRADS = [np.array([1e-6, -1e-6, 2e-6]), np.array([1e-6, 3e-6, -1e-6])]  # tiny: where the two epsilons differ


def _run(opt, grads=GRADS, fn=None):
    w = tf.Variable(np.array(P0, np.float32))
    opt.build([w])
    for g in grads:
        (fn or opt.apply)([tf.constant(g, tf.float32)], [w])
    return w.numpy()


def test_two_tiny_steps_match_the_torch_formula():
    got = _run(TorchAdam(2e-4, beta_1=0.5, beta_2=0.999))
    want = torch_adam_numpy(P0, GRADS)
    # hand check of step 1 of element 0: m = 5e-7, v = 1e-15, m_hat = 1e-6, sqrt(v_hat) = 1e-6
    # -> p = 0.5 - 2e-4 * 1e-6 / (1e-6 + 1e-8) = 0.5 - 1.980198e-4
    assert torch_adam_numpy(P0, GRADS[:1])[0] == pytest.approx(0.5 - 2e-4 / 1.01, abs=1e-12)
    np.testing.assert_allclose(got, want, rtol=0, atol=2.5e-7)  # float32 rounding of the weights themselves
    np.testing.assert_allclose(got - np.float32(P0), want - np.array(P0), rtol=2e-3, atol=0)  # the updates


def test_keras_adam_differs_by_its_epsilon():
    got = _run(keras.optimizers.Adam(2e-4, beta_1=0.5, beta_2=0.999))
    np.testing.assert_allclose(got, keras_adam_numpy(P0, GRADS), rtol=0, atol=2.5e-7)
    delta_keras = got - np.float32(P0)
    delta_torch = torch_adam_numpy(P0, GRADS) - np.array(P0)
    assert np.max(np.abs(delta_keras - delta_torch) / np.abs(delta_torch)) > 0.5  # eps 1e-7 before correction


def test_under_xla_and_with_a_schedule():
    from tfi2i.schedules import Pix2PixLinearDecay

    opt = TorchAdam(Pix2PixLinearDecay(2e-4, 1, 100, 100), beta_1=0.5, beta_2=0.999)
    w = tf.Variable(np.array(P0, np.float32))
    opt.build([w])
    step = tf.function(lambda g: opt.apply([g], [w]), jit_compile=True)
    for g in GRADS:
        step(tf.constant(g, tf.float32))
    np.testing.assert_allclose(w.numpy(), torch_adam_numpy(P0, GRADS), rtol=0, atol=2.5e-7)


def test_loss_scale_optimizer_unscales_and_skips_non_finite():
    opt = keras.optimizers.LossScaleOptimizer(TorchAdam(2e-4, beta_1=0.5, beta_2=0.999), initial_scale=1024.0)
    w = tf.Variable(np.array(P0, np.float32))
    opt.build([w])
    opt.apply([tf.constant([np.inf, 0, 0], tf.float32)], [w])  # skipped, scale halved
    assert np.array_equal(w.numpy(), np.float32(P0)) and float(opt.dynamic_scale) == 512.0
    opt = keras.optimizers.LossScaleOptimizer(TorchAdam(2e-4, beta_1=0.5, beta_2=0.999), initial_scale=1024.0)
    w = tf.Variable(np.array(P0, np.float32))
    opt.build([w])
    for g in GRADS:
        opt.apply([tf.constant(g * 1024.0, tf.float32)], [w])  # scaled gradients in, unscaled update
    np.testing.assert_allclose(w.numpy(), torch_adam_numpy(P0, GRADS), rtol=0, atol=2.5e-7)


def test_checkpoint_round_trip_continues_identically(tmp_path):
    def fresh():
        w = tf.Variable(np.array(P0, np.float32))
        opt = TorchAdam(2e-4, beta_1=0.5, beta_2=0.999)
        opt.build([w])
        return w, opt

    w, opt = fresh()
    opt.apply([tf.constant(GRADS[0], tf.float32)], [w])
    path = tf.train.Checkpoint(w=w, opt=opt).save(str(tmp_path / "ckpt"))
    opt.apply([tf.constant(GRADS[1], tf.float32)], [w])
    w2, opt2 = fresh()
    tf.train.Checkpoint(w=w2, opt=opt2).restore(path).assert_existing_objects_matched()
    assert int(opt2.iterations.numpy()) == 1
    opt2.apply([tf.constant(GRADS[1], tf.float32)], [w2])
    assert np.array_equal(w.numpy(), w2.numpy())


def test_make_adam_and_serialization():
    assert isinstance(make_adam("torch", 1e-3, 0.5, 0.999), TorchAdam)
    assert type(make_adam("keras", 1e-3, 0.5, 0.999)) is keras.optimizers.Adam
    with pytest.raises(ValueError, match="torch, keras"):
        make_adam("sgd", 1e-3, 0.5, 0.999)
    opt = TorchAdam(1e-3, beta_1=0.5)
    again = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert isinstance(again, TorchAdam) and again.epsilon == 1e-8 and again.beta_1 == 0.5


def test_the_update_is_one_fused_kernel_per_variable_and_equals_the_readable_form():
    from keras.src.backend.tensorflow.optimizer import TFOptimizer

    class Readable(TorchAdam):  # Keras' loop over `update_step`, the line-by-line torch formula
        _distributed_tf_update_step = TFOptimizer._distributed_tf_update_step

    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(4, 5)).astype(np.float32)
    grads = [rng.normal(size=(4, 5)).astype(np.float32) * 10.0 ** rng.integers(-7, 0) for _ in range(6)]
    got = {}
    for cls in (TorchAdam, Readable):
        w = tf.Variable(p0)
        opt = cls(2e-4, beta_1=0.5, beta_2=0.999)
        opt.build([w])
        step = tf.function(lambda g: opt.apply([g], [w]))
        ops_in_graph = {op.type for op in step.get_concrete_function(tf.TensorSpec((4, 5))).graph.get_operations()}
        assert ("ResourceApplyAdam" in ops_in_graph) == (cls is TorchAdam)
        for g in grads:
            step(tf.constant(g))
        got[cls] = w.numpy()
    want = torch_adam_numpy(p0, grads)
    np.testing.assert_allclose(got[TorchAdam], want, rtol=0, atol=2.5e-7)
    np.testing.assert_allclose(got[TorchAdam] - p0, got[Readable] - p0, rtol=1e-5, atol=1e-9)
