"""The training entry point under `--strategy mirrored` (2 logical CPUs) and `--strategy multiworker`
(2 worker processes on 127.0.0.1) ends with the weights of a one-device run on the same global batch."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
RECIPE = str(REPO / "recipes" / "pix2pix_facades.py")
# dropout off: each replica draws its own masks, which by design differ from one device's
ARGS = ["--steps", "3", "--set", "generator.name=unet_5", "--set", "generator.ngf=4", "--set", "generator.dropout=0",
        "--set", "discriminator.ndf=4", "--set", "discriminator.n_layers=2", "--set", "data.load_size=36",
        "--set", "data.crop_size=32", "--set", "data.batch_size=4", "--set", "data.num_samples=1",
        "--set", "train.eval_at_end=false", "--set", "train.export_at_end=false", "--set", "train.log_every=1"]


def weights(checkpoints):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(checkpoints)))
    names = [k for k in reader.get_variable_to_shape_map()
             if (k.startswith("generator/") or k.startswith("discriminator/")) and "OBJECT_GRAPH" not in k]
    return {k: reader.get_tensor(k) for k in names}


def assert_close(a, b, tol):
    assert a.keys() == b.keys() and len(a) > 10
    diff = max(float(np.max(np.abs(a[k].astype(np.float64) - b[k]))) for k in a)
    assert diff <= tol, diff


def run(args, env=None, timeout=600):
    proc = subprocess.run([sys.executable, RECIPE, *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    w = tmp_path_factory.mktemp("single") / "run"
    run(["--workdir", str(w), *ARGS])
    return weights(w / "checkpoints")


MIRRORED = """
import sys, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.argv = [sys.argv[0]] + sys.argv[1:]
sys.path.insert(0, {recipes!r})
import runpy
runpy.run_path({recipe!r}, run_name="__main__")
"""


def test_mirrored_equals_single_device(tmp_path, single):
    w = tmp_path / "mirrored"
    script = MIRRORED.format(recipes=str(REPO / "recipes"), recipe=RECIPE)
    proc = subprocess.run([sys.executable, "-c", script, "--workdir", str(w), "--strategy", "mirrored", *ARGS],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "mirrored strategy, 2 replicas" in proc.stderr
    cfg = json.loads((w / "config.json").read_text())
    assert cfg["train"]["strategy"] == "mirrored"
    assert_close(weights(w / "checkpoints"), single, 1e-5)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_multiworker_two_processes_equal_single_process(tmp_path, single):
    w = tmp_path / "multi"
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen([sys.executable, RECIPE, "--workdir", str(w), "--strategy", "multiworker", *ARGS],
                                      cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-4000:]
    assert "multiworker strategy, 2 replicas" in outputs[0][1]
    chief, other = weights(w / "checkpoints"), weights(w / "workers" / "worker_1" / "checkpoints")
    assert_close(chief, other, 0.0)  # both workers end with identical weights
    assert_close(chief, single, 1e-5)  # ... equal to one process on the same global batch
    assert (w / "samples").is_dir() and not (w / "workers" / "worker_1" / "samples").exists()
