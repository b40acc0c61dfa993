"""MirroredStrategy on 2 logical CPU devices equals one device on the same global batch.

Logical devices must be configured before TensorFlow runs any op, so the
comparison runs in a fresh subprocess.
"""

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, numpy as np, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tfi2i.gan import PairedGAN
    from tfi2i.networks import patchgan_discriminator, unet_generator
    from tfi2i.train import make_distributed_step

    W = {"g_gan": 1.0, "l1": 100.0, "d_real": 0.5, "d_fake": 0.5}
    rng = np.random.default_rng(0)
    data = [{"x": rng.uniform(-1, 1, (4, 32, 32, 3)).astype("float32"),
             "y": rng.uniform(-1, 1, (4, 32, 32, 3)).astype("float32")} for _ in range(3)]

    def run(strategy, init=None):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            # dropout off: per-replica dropout masks differ from one device's by design
            g = unet_generator("unet_5", 4, "batch", dropout=0.0)
            d = patchgan_discriminator(6, 4, 2, "batch")
            gan = PairedGAN(g, d, W)
            gan.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5))
        if init is not None:
            for net, values in zip((g, d), init):
                net.set_weights(values)
        init_values = (g.get_weights(), d.get_weights())
        ds = tf.data.Dataset.from_tensor_slices({k: np.stack([b[k] for b in data]) for k in data[0]}).unbatch().batch(4)
        it = iter(strategy.experimental_distribute_dataset(ds))
        step = make_distributed_step(gan, strategy, jit=False)
        logs = [{k: float(v) for k, v in step(next(it)).items()} for _ in range(3)]
        return init_values, g.get_weights() + d.get_weights(), logs

    init, single, single_logs = run(tf.distribute.get_strategy())
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    _, multi, multi_logs = run(mirrored, init)
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(single, multi))
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(single, init[0] + init[1]))
    print(json.dumps({"max_weight_diff": diff, "moved": moved, "single": single_logs[-1], "multi": multi_logs[-1]}))
    """
)


def test_mirrored_two_replicas_equal_single_device():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["moved"] > 1e-4  # training changed the weights...
    assert result["max_weight_diff"] <= 1e-5, result  # ...identically on 1 and on 2 replicas
    for key, value in result["single"].items():
        assert abs(value - result["multi"][key]) <= 1e-4 * max(1.0, abs(value)), (key, result)
