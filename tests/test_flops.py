"""`tfi2i.flops`: hand-computed counts, the pix2pixHD figures the papers quote, and TF's profiler on a small U-Net.

Only symbolic models are built (shape inference); nothing runs at full size.
"""

import keras
import pytest

from tfi2i.flops import FlopsError, count_flops, flops_by_layer, format_breakdown
from tfi2i.networks.pix2pixhd import global_generator, local_enhancer, multiscale_discriminator


def _model(inp, out, name="m"):
    return keras.Model(inp, out, name=name)


def test_one_conv_counts_output_positions():
    inp = keras.Input((None, None, 3), name="x")
    m = _model(inp, keras.layers.Conv2D(4, 3, strides=2, padding="same")(inp))
    # 8x8 input, stride 2 -> 4x4 output positions, each 3*3*3 MACs per filter, 4 filters; FLOPs = 2 MACs
    assert count_flops(m, (8, 8, 3)) == 2 * (4 * 4) * (3 * 3 * 3) * 4 == 3456
    # "valid" stride 1 on 10x12: 8x10 positions
    m = _model(inp, keras.layers.Conv2D(5, 3, padding="valid")(inp))
    assert count_flops(m, (10, 12, 3)) == 2 * (8 * 10) * 27 * 5
    assert count_flops(m, (10, 12, 3), batch=4) == 4 * 2 * (8 * 10) * 27 * 5


def test_transposed_conv_counts_input_positions():
    inp = keras.Input((None, None, 6), name="x")
    m = _model(inp, keras.layers.Conv2DTranspose(5, 3, strides=2, padding="same")(inp))
    # 4x4 input positions (the output is 8x8), each scatters a 3x3x6x5 kernel
    assert count_flops(m, (4, 4, 6)) == 2 * 16 * 9 * 6 * 5 == 8640
    m = _model(inp, keras.layers.Conv2DTranspose(5, 3, strides=2, padding="valid")(inp))  # 9x9 output: same cost
    assert count_flops(m, (4, 4, 6)) == 8640


def test_dense():
    inp = keras.Input((10,), name="v")
    assert count_flops(_model(inp, keras.layers.Dense(7)(inp)), (10,)) == 2 * 10 * 7
    inp = keras.Input((4, 10), name="v")  # Dense on the last axis of a sequence: 4 positions
    assert count_flops(_model(inp, keras.layers.Dense(7)(inp)), (4, 10)) == 2 * 4 * 10 * 7


def test_depthwise_and_separable():
    inp = keras.Input((None, None, 4), name="x")
    m = _model(inp, keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(inp))
    assert count_flops(m, (6, 6, 4)) == 2 * 36 * 9 * 4 * 2
    m = _model(inp, keras.layers.SeparableConv2D(5, 3, strides=2, padding="same")(inp))
    assert count_flops(m, (6, 6, 4)) == 2 * 9 * (9 * 4 + 4 * 5)


def test_nested_model_counted_per_call_and_dict_inputs():
    sub_in = keras.Input((None, None, 2), name="s")
    sub = _model(sub_in, keras.layers.Conv2D(3, 1)(sub_in), name="sub")
    a, b = keras.Input((None, None, 2), name="a"), keras.Input((None, None, 1), name="b")
    h = keras.layers.Concatenate()([sub(a), b])  # 4 channels
    h = keras.layers.Conv2D(2, 3, padding="same", name="head")(h)
    h = keras.layers.BatchNormalization()(keras.layers.ReLU()(h))  # element-wise: not counted
    m = _model({"a": a, "b": b}, {"y": sub(h)}, name="outer")  # the same nested model called twice
    shapes = {"b": (5, 7, 1), "a": (5, 7, 2)}  # dict order does not matter
    sub_flops = 2 * 35 * 2 * 3
    head = 2 * 35 * 9 * 4 * 2
    total, rows = count_flops(m, shapes, breakdown=True)
    assert total == 2 * sub_flops + head
    assert sum(r.path.startswith("sub/") for r in rows) == 2
    assert "total" in format_breakdown(rows)
    with pytest.raises(ValueError, match="missing"):
        count_flops(m, {"a": (5, 7, 2)})
    with pytest.raises(ValueError, match="declared"):
        count_flops(m, {"a": (5, 7, 3), "b": (5, 7, 1)})


def test_sequential_nested_in_functional():
    seq = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(4, 3, padding="same"),
                            keras.layers.ReLU(), keras.layers.Conv2D(2, 1)], name="seq")
    inp = keras.Input((None, None, 3), name="image")
    m = _model({"image": inp}, seq(inp))
    assert count_flops(m, {"image": (6, 6, 3)}) == 2 * 36 * (27 * 4 + 4 * 2)
    assert count_flops(seq, (6, 6, 3)) == 2 * 36 * (27 * 4 + 4 * 2)


def test_layer_hiding_a_conv_is_not_silently_skipped():
    class Block(keras.layers.Layer):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.conv = keras.layers.Conv2D(2, 3, padding="same")

        def call(self, x):
            return self.conv(x)

        def compute_output_shape(self, s):
            return (*s[:-1], 2)

    inp = keras.Input((None, None, 3), name="x")
    m = _model(inp, keras.layers.Conv2D(2, 1)(Block(name="block")(inp)))
    with pytest.raises(FlopsError, match="block"):
        count_flops(m, (4, 4, 3))
    with pytest.warns(UserWarning, match="block"):
        rows, uncounted = flops_by_layer(m, (4, 4, 3), strict=False)
    assert uncounted == ["block"] and sum(r.flops for r in rows) == 2 * 16 * 2 * 2
    v = keras.Input((10,), name="v")  # a kernel outside the counted classes is flagged too
    with pytest.raises(FlopsError, match="einsum"):
        count_flops(_model(v, keras.layers.EinsumDense("ab,bc->ac", output_shape=4, name="einsum")(v)), (10,))


def _global_hand_count(h, w, cin, ngf, n_down, n_blocks, cout=3):
    """pix2pixHD GlobalGenerator MACs x 2 from its layer list (NVIDIA models/networks.py)."""
    macs = h * w * 49 * cin * ngf  # 7x7 head
    for d in range(n_down):
        c = ngf * 2**d
        macs += (h >> (d + 1)) * (w >> (d + 1)) * 9 * c * 2 * c  # stride-2 3x3: output positions
    cb = ngf * 2**n_down
    macs += 2 * n_blocks * (h >> n_down) * (w >> n_down) * 9 * cb * cb
    for u in range(n_down):
        c = ngf * 2 ** (n_down - u)
        macs += (h >> (n_down - u)) * (w >> (n_down - u)) * 9 * c * c // 2  # transposed: input positions
    return 2 * (macs + h * w * 49 * ngf * cout)


def test_pix2pixhd_global_generator_2048x1024_is_3_3_tflops():
    """MSG U-Net compares against pix2pixHD's 3.32 TFLOPs: global G, ngf 64, 3 downsamplings, 9 blocks, RGB in."""
    g = global_generator({"x": 3}, ngf=64, n_downsample=3, n_blocks=9)
    flops = count_flops(g, (1024, 2048, 3))
    print(f"pix2pixHD global generator (RGB, ngf 64, 3 down, 9 blocks) at 2048x1024: {flops:,} FLOPs "
          f"= {flops / 1e12:.4f} TFLOPs")
    assert flops == _global_hand_count(1024, 2048, 3, 64, 3, 9) == 3_325_915_299_840
    assert round(flops / 1e12, 1) == 3.3
    assert f"{flops:.1e}" == "3.3e+12"


def test_pix2pixhd_local_enhancer_2048x1024_is_about_1_5_tflops():
    """Cityscapes 1024p: local enhancer (ngf 32; global part ngf 64, 4 down, 9 blocks) on 35 labels + edges."""
    g = local_enhancer({"x": 35, "instances": 1}, ngf=32)
    flops, rows = count_flops(g, {"x": (1024, 2048, 35), "instances": (1024, 2048, 1)}, breakdown=True)
    print(f"pix2pixHD local enhancer (36 in, ngf 32) at 2048x1024: {flops:,} FLOPs = {flops / 1e12:.4f} TFLOPs")
    global_part = sum(r.flops for r in rows if r.path.startswith("model_"))
    # the global part is a global generator at half size without its 7x7 head
    assert global_part == _global_hand_count(512, 1024, 36, 64, 4, 9) - 2 * 512 * 1024 * 49 * 64 * 3
    local = 2 * (2048 * 1024 * 49 * 36 * 32 + 1024 * 512 * 9 * 32 * 64 + 6 * 1024 * 512 * 9 * 64 * 64
                 + 1024 * 512 * 9 * 64 * 32 + 2048 * 1024 * 49 * 32 * 3)
    assert flops == global_part + local == 1_495_856_578_560
    assert round(flops / 1e12, 1) == 1.5


def test_multiscale_discriminator_is_walkable():
    d0, d1 = multiscale_discriminator(39)
    f = count_flops(d0, (256, 512, 39))
    assert f > 0 and count_flops(d1, (128, 256, 39)) < f / 3


def test_profiler_agrees_on_convs(monkeypatch):
    """TF's v1 profiler on a frozen small U-Net: its Conv2D and Conv2DBackpropInput FLOPs equal ours exactly.

    With native convolutions: the count is the paper's (the layer's multiply-adds), not that of the sub-pixel form
    a CPU runs at inference (`tfi2i.layers.transposed`), which adds a one-pixel margin, nor the profiler's split
    of the matmul forms of the small inner layers (`tfi2i.layers.conv`) into MatMul ops.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from tfi2i.networks import unet_generator

    monkeypatch.setenv("TFI2I_TRANSPOSED_CONV", "native")
    monkeypatch.setenv("TFI2I_CONV", "native")  # no matmul forms for the small inner layers (`tfi2i.layers.conv`)
    g = unet_generator("unet_128", 8, "batch")
    total, rows = count_flops(g, (128, 128, 3), breakdown=True)
    fn = tf.function(lambda x: g({"x": x}, training=False)).get_concrete_function(
        tf.TensorSpec((1, 128, 128, 3), tf.float32))
    graph = convert_variables_to_constants_v2(fn).graph
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    prof = tf.compat.v1.profiler.profile(graph=graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=opts)
    by_op, stack = {}, list(prof.children)
    while stack:  # the "op" view nests each op type under the previous one
        node = stack.pop()
        by_op[node.name] = node.float_ops
        stack.extend(node.children)
    assert by_op["Conv2D"] == sum(r.flops for r in rows if r.kind == "Conv2D")
    assert by_op["Conv2DBackpropInput"] == sum(r.flops for r in rows if r.kind == "Conv2DTranspose")
    # the rest of the profiler's total is element-wise (batch norm, bias adds): under 1 %
    assert 0 < prof.total_float_ops - total < 0.01 * total
