"""Recomputed blocks (`tfi2i.layers.recompute`): same outputs, gradients and batch-norm statistics as plain ones."""

import numpy as np
import tensorflow as tf

from tests.helpers import waits_for
from tfi2i.flops import count_flops
from tfi2i.layers.recompute import RecomputedBlock
from tfi2i.networks.msg_unet import msg_unet_generator

WIDTHS = (4, 8, 8, 8)  # two input scales, a two-level U-Net below: 16x16 inputs


def _pair():
    plain = msg_unet_generator(3, 3, WIDTHS, scales=2, depth=2)
    again = msg_unet_generator(3, 3, WIDTHS, scales=2, depth=2, recompute=True)
    by_path = {v.path: v for v in again.weights}
    assert sorted(by_path) == sorted(v.path for v in plain.weights)  # the same variables, named alike
    for v in plain.weights:
        by_path[v.path].assign(v + tf.random.stateless_normal(v.shape, [1, 2], stddev=0.1) * float(v.trainable))
        v.assign(by_path[v.path])
    return plain, again, by_path


def _inputs():
    x = tf.random.stateless_uniform([2, 16, 16, 3], [3, 4], -1, 1)
    return {"x": x, "x_2": tf.nn.avg_pool2d(x, 2, 2, "VALID")}


def _step(generator, inputs):
    @tf.function(autograph=False)
    def step():
        with tf.GradientTape() as tape:
            out = generator(inputs, training=True)
            loss = tf.add_n([tf.reduce_sum(tf.square(o)) for o in out.values()])
        return loss, tape.gradient(loss, generator.trainable_variables)

    return step()


def test_blocks_are_recomputed_models_with_the_same_layers_and_flops():
    plain, again, _ = _pair()
    assert isinstance(again.get_layer("enc0_conv1"), RecomputedBlock)
    assert again.get_layer("enc0_conv1").get_layer("enc0_conv1_norm").name == "enc0_conv1_norm"
    assert plain.count_params() == again.count_params()
    shapes = {"x": (16, 16, 3), "x_2": (8, 8, 3)}
    assert count_flops(again, shapes) == count_flops(plain, shapes)  # the counter walks into the blocks


def test_training_step_gives_the_same_loss_gradients_and_moving_statistics():
    plain, again, by_path = _pair()
    inputs = _inputs()
    loss_a, grads_a = _step(plain, inputs)
    loss_b, grads_b = _step(again, inputs)
    np.testing.assert_allclose(loss_b, loss_a, rtol=1e-5)
    order = {v.path: g for v, g in zip(again.trainable_variables, grads_b)}
    for v, g in zip(plain.trainable_variables, grads_a):
        np.testing.assert_allclose(order[v.path], g, rtol=1e-4, atol=1e-5, err_msg=v.path)
    moving = [v for v in plain.non_trainable_weights if "moving" in v.path]
    assert moving
    for v in moving:  # updated once per step, not again by the recomputation
        np.testing.assert_allclose(by_path[v.path].numpy(), v.numpy(), rtol=1e-6, atol=1e-7, err_msg=v.path)
    out_a, out_b = plain(inputs, training=False), again(inputs, training=False)
    for name in out_a:
        np.testing.assert_allclose(out_b[name], out_a[name], atol=1e-5)


def test_the_recomputation_waits_for_the_output_gradient():
    """In a graph the second forward pass must depend on dy; else it runs during the forward pass (no memory saved)."""
    from tfi2i.layers.recompute import recompute

    kernel = tf.Variable(tf.random.stateless_normal([3, 3, 2, 2], [5, 6]))

    @tf.function(autograph=False)
    def backward(x, seed):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = recompute(lambda t: tf.nn.relu(tf.nn.conv2d(t, kernel, 1, "SAME")), x, [kernel])
        return tape.gradient(y, [x, kernel], output_gradients=seed)

    x = tf.random.stateless_normal([1, 6, 6, 2], [7, 8])
    graph = backward.get_concrete_function(x, tf.zeros_like(x)).graph

    forwards = [op for op in graph.get_operations() if op.type == "Conv2D"]
    assert len(forwards) == 2  # the forward pass and its recomputation (the gradients are other op types)
    waits = [waits_for(op, "seed") for op in forwards]
    assert sorted(waits) == [False, True], waits

