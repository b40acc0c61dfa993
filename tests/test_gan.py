"""PairedGAN: the weighted sum, the train/test steps, the LR schedule, mixed precision."""

import numpy as np
import pytest
import keras
import tensorflow as tf

from tfi2i.gan import PairedGAN
from tfi2i.networks import patchgan_discriminator, unet_generator
from tfi2i.schedules import Pix2PixLinearDecay

WEIGHTS = {"g_gan": 1.0, "l1": 100.0, "d_real": 0.5, "d_fake": 0.5}


def tiny_gan(norm="batch", dropout=0.5, weights=WEIGHTS, mode="vanilla"):
    keras.utils.set_random_seed(0)
    g = unet_generator("unet_5", 4, norm, dropout)
    d = patchgan_discriminator(6, 4, 2, norm)
    gan = PairedGAN(g, d, weights, gan_mode=mode)
    gan.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5))
    return gan


def batch(b=2, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "x": tf.constant(rng.uniform(-1, 1, (b, size, size, 3)), tf.float32),
        "y": tf.constant(rng.uniform(-1, 1, (b, size, size, 3)), tf.float32),
    }


def test_weighted_sum_by_hand():
    gan = tiny_gan(weights={"a": 1.0, "b": 0.5, "c": 0.0})
    total, averaged = gan.weighted_sum({"a": tf.constant([1.0, 3.0]), "b": tf.constant([2.0, 2.0]), "c": tf.constant([9.0, 9.0])})
    assert float(total) == pytest.approx(1.0 * 2.0 + 0.5 * 2.0)  # c has weight 0: off
    assert float(averaged["c"]) == pytest.approx(9.0)  # but still logged
    with pytest.raises(KeyError, match="no weight"):
        gan.weighted_sum({"unknown": tf.constant([1.0])})


def test_train_step_updates_both_networks_and_logs_every_term():
    gan = tiny_gan()
    g0 = [v.numpy().copy() for v in gan.generator.trainable_variables]
    d0 = [v.numpy().copy() for v in gan.discriminator.trainable_variables]
    logs = tf.function(gan.train_step)(batch())
    assert set(logs) == {"g_gan", "l1", "d_real", "d_fake", "g_total", "d_total"}
    assert float(logs["g_total"]) == pytest.approx(float(logs["g_gan"]) + 100 * float(logs["l1"]), rel=1e-5)
    assert float(logs["d_total"]) == pytest.approx(0.5 * (float(logs["d_real"]) + float(logs["d_fake"])), rel=1e-5)
    assert all(not np.allclose(a, b.numpy()) for a, b in zip(g0, gan.generator.trainable_variables))
    assert all(not np.allclose(a, b.numpy()) for a, b in zip(d0, gan.discriminator.trainable_variables))
    assert int(gan.g_optimizer.iterations) == 1 and int(gan.d_optimizer.iterations) == 1
    assert {m.name for m in gan.metrics} >= {"l1", "g_gan"}


def test_d_loss_uses_detached_fake_and_g_loss_leaves_d_alone():
    gan = tiny_gan(norm="instance", dropout=0.0)
    data = batch()
    with tf.GradientTape() as tape:
        y_fake = gan.generator({"x": data["x"]}, training=True)["y"]
        total, _ = gan.weighted_sum(gan.generator_terms(data, y_fake))
    grads = tape.gradient(total, gan.generator.trainable_variables)
    assert all(g is not None for g in grads)  # G's objective reaches every G weight (through D for g_gan)
    with tf.GradientTape() as tape:
        y_fake = gan.generator({"x": data["x"]}, training=True)["y"]
        d_total, _ = gan.weighted_sum(gan.discriminator_terms(data, tf.stop_gradient(y_fake)))
    assert all(g is None for g in tape.gradient(d_total, gan.generator.trainable_variables))


@pytest.mark.parametrize("mode", ["lsgan", "hinge"])
def test_other_gan_modes_train(mode):
    logs = tiny_gan(mode=mode).train_step(batch())
    assert np.isfinite(float(logs["g_total"]))


def test_test_step_is_deterministic_inference():
    gan = tiny_gan()
    a = gan.test_step(batch())
    b = gan.test_step(batch())
    assert float(a["l1"]) == float(b["l1"])
    assert "d_real" not in a


def test_lr_schedule_reference_rule():
    # The reference (junyanz, train.py since 2020) calls update_learning_rate() = LambdaLR.step() at the START
    # of every epoch, so 1-based epoch E trains with lambda_rule(E) = 1 - max(0, E + 1 - n_epochs) / (n_decay + 1)
    # (epoch_count 1). These numbers replace the older end-of-epoch ones (lambda_rule(E - 1): last epoch at
    # base / 101), which came from the 2017-2020 train.py.
    s = Pix2PixLinearDecay(2e-4, steps_per_epoch=10, n_epochs=100, n_epochs_decay=100)
    lr = lambda epoch: float(s(epoch * 10))  # noqa: E731  (0-based epoch e = E - 1)
    assert lr(0) == pytest.approx(2e-4) and lr(98) == pytest.approx(2e-4)  # E = 1..99: 1 - 0 / 101
    assert lr(99) == pytest.approx(2e-4 * 100 / 101)  # E = 100: 1 - 1 / 101
    assert lr(100) == pytest.approx(2e-4 * 99 / 101)  # E = 101: 1 - 2 / 101
    assert lr(198) == pytest.approx(2e-4 * 1 / 101)  # E = 199: 1 - 100 / 101
    assert lr(199) == 0.0  # E = 200, the last epoch: 1 - 101 / 101
    assert float(s(1009)) == pytest.approx(2e-4 * 99 / 101)  # constant within an epoch
    assert lr(250) == 0.0


def test_lr_schedule_fit_to_run_and_the_length_warning():
    import dataclasses

    from tfi2i import config as config_lib
    from tfi2i.train import schedule_warning

    fitted = Pix2PixLinearDecay(2e-4, steps_per_epoch=1, n_epochs=100, n_epochs_decay=100, total_steps=10)
    # E(step) = ceil((step + 1) * 200 / 10) = 20 (step + 1)
    assert float(fitted(0)) == pytest.approx(2e-4)  # E = 20
    assert float(fitted(4)) == pytest.approx(2e-4 * 100 / 101)  # E = 100
    assert float(fitted(5)) == pytest.approx(2e-4 * 80 / 101)  # E = 120: 1 - 21 / 101
    assert float(fitted(9)) == 0.0  # E = 200: the run's last step
    plain = Pix2PixLinearDecay(2e-4, 3, 4, 2)
    same = Pix2PixLinearDecay(2e-4, 3, 4, 2, total_steps=18)  # = (4 + 2) * 3: the plain rule
    assert [float(plain(i)) for i in range(20)] == [float(same(i)) for i in range(20)]

    cfg = config_lib.Config()
    assert schedule_warning(cfg, 5, 1000) is None  # 200 epochs x 5 steps: as planned
    assert "LR stays 0.0002 to the end" in schedule_warning(cfg, 5, 400)
    assert "decays only to" in schedule_warning(cfg, 5, 800)
    assert "stays 0 for the last" in schedule_warning(cfg, 5, 1200)
    fit = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, fit_to_run=True))
    assert schedule_warning(fit, 5, 400) is None

    from tfi2i.optimizers import TorchAdam
    from tfi2i.train import make_optimizers

    g_opt, d_opt = make_optimizers(dataclasses.replace(fit, train=dataclasses.replace(fit.train, steps=10)), 5)
    assert isinstance(g_opt, TorchAdam) and isinstance(d_opt, TorchAdam)  # optim.adam = "torch" (default)
    g_opt.iterations.assign(9)
    assert float(g_opt.learning_rate) == 0.0  # fitted: the 10-step run's last step is the schedule's last epoch
    keras_cfg = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, adam="keras"))
    assert type(make_optimizers(keras_cfg, 5)[0]) is keras.optimizers.Adam


def test_mixed_precision_wraps_both_optimizers():
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        gan = tiny_gan()
        assert isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer)
        assert isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer)
        assert gan.generator.get_layer("down2").compute_dtype == "float16"
        out = gan.generator({"x": batch()["x"]})["y"]
        assert out.dtype == tf.float32  # float32 outputs
        logs = tf.function(gan.train_step)(batch())
        assert all(np.isfinite(float(v)) for v in logs.values())
        assert all(v.dtype == tf.float32 for v in gan.generator.trainable_variables)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def _one_step(jit=False, mixed=False, steps=2):
    """Weights after `steps` train steps of the tiny GAN (dropout off), with XLA and/or mixed precision."""
    from tfi2i.train import make_distributed_step

    keras.mixed_precision.set_dtype_policy("mixed_float16" if mixed else "float32")
    try:
        gan = tiny_gan(dropout=0.0)
        step = make_distributed_step(gan, tf.distribute.get_strategy(), jit=jit)
        logs = [step(batch(seed=s)) for s in range(steps)]
        return [v.numpy() for v in gan.generator.trainable_variables], {k: float(v) for k, v in logs[-1].items()}
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def test_xla_changes_results_only_by_float_noise():
    ref, ref_logs = _one_step()
    xla, xla_logs = _one_step(jit=True)
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(ref, xla)) < 1e-5
    for k in ref_logs:
        assert xla_logs[k] == pytest.approx(ref_logs[k], rel=1e-4, abs=1e-5)


def test_mixed_precision_changes_results_only_by_float16_noise():
    # same weights, one step: the losses computed in float16 match float32 to float16 precision
    _, ref_logs = _one_step(steps=1)
    _, mixed_logs = _one_step(mixed=True, steps=1)
    for k in ref_logs:
        assert mixed_logs[k] == pytest.approx(ref_logs[k], rel=2e-2, abs=2e-3), k
    # and G's float16 forward pass equals its float32 one to ~1e-2 (tanh outputs in [-1, 1])
    x = batch()["x"]
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        g16 = tiny_gan(dropout=0.0).generator
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    g32 = tiny_gan(dropout=0.0).generator
    g16.set_weights(g32.get_weights())
    assert float(tf.reduce_max(tf.abs(g16({"x": x})["y"] - g32({"x": x})["y"]))) < 2e-2
