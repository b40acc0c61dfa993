"""The training entry point: artifacts, resume bit for bit, crash safety, non-finite stop, CLI."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tfi2i import config as C
from tfi2i import train
from tfi2i.gan import PairedGAN
from tests.helpers import killed_copy

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "recipes"))
import pix2pix_facades as recipe  # noqa: E402


def smoke(**train_fields):
    cfg = recipe.smoke_config()
    return C.replace(cfg, train={"deterministic": True, **train_fields})


def weights_of(workdir):
    """All checkpointed variables of the latest checkpoint, by name."""
    import tensorflow as tf

    path = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
    reader = tf.train.load_checkpoint(path)
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map() if "save_counter" not in k and "OBJECT_GRAPH" not in k}


@pytest.fixture(scope="module")
def full4(tmp_path_factory):
    """One uninterrupted run of the smoke config (4 steps, checkpoints at 2 and 4), shared: copy it before changing it."""
    w = tmp_path_factory.mktemp("full4") / "pix2pix_b"
    assert recipe.smoke_config().train.steps == 4
    train.fit(smoke(export_at_end=True), recipe.build, str(w))  # the smoke config does not export by itself
    return w


def test_smoke_run_leaves_every_artifact(full4):
    w = full4  # the recipe's smoke config as it is (4 steps), read only
    cfg = json.loads((w / "config.json").read_text())
    assert cfg["train"]["steps"] == 4 and cfg["loss"]["weights"]["l1"] == 100.0
    assert (w / "checkpoints" / "checkpoint").exists()
    assert sorted(p.name for p in (w / "samples").glob("*.png")) == ["step_0000002.png", "step_0000004.png"]
    assert list((w / "logs").glob("events.out.tfevents.*"))
    records = [json.loads(line) for line in (w / "metrics.jsonl").read_text().splitlines()]
    train_records = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train_records] == [1, 2, 3, 4]
    assert {"g_gan", "l1", "d_real", "d_fake", "lr", "images_per_sec"} <= set(train_records[0])
    evaluation = json.loads((w / "eval.json").read_text())
    assert evaluation["num_images"] > 0 and 0 <= evaluation["ssim"] <= 1
    assert (w / "loss_curves.png").stat().st_size > 1000
    assert (w / "export" / "1" / "saved_model.pb").is_file()  # exported for TF Serving at the end
    assert (w / "samples" / "step_0000004.png").stat().st_mode & 0o044  # readable like any file the user writes


def test_resume_is_bit_exact(full4, tmp_path):
    part = killed_copy(full4, 2, tmp_path / "part")  # killed after its checkpoint at step 2
    train.fit(smoke(steps=4), recipe.build, str(part), resume=True)
    a, b = weights_of(full4), weights_of(part)
    assert a.keys() == b.keys() and len(a) > 20
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # the optimizers' step counters (LR schedule position) and the run's step are included
    assert any("iterations" in k for k in a) and any(k.startswith("step") for k in a)


def test_existing_run_is_never_overwritten(full4, tmp_path):
    w = full4
    with pytest.raises(train.TrainingError, match="--resume"):
        train.fit(smoke(steps=2), recipe.build, str(w))
    with pytest.raises(train.TrainingError, match="holds no run"):
        train.fit(smoke(steps=2), recipe.build, str(tmp_path / "empty"), resume=True)


def test_unreadable_latest_checkpoint_falls_back(full4, tmp_path, caplog):
    import shutil

    w = tmp_path / "run"
    shutil.copytree(full4, w)
    ckpt = w / "checkpoints"
    for data in ckpt.glob("ckpt-4.data-*"):
        data.write_bytes(b"truncated")  # a crash or full disk mid-write
    with caplog.at_level("INFO", logger="tfi2i"):
        train.fit(smoke(steps=6), recipe.build, str(w), resume=True)
    assert "ckpt-4 is unreadable" in caplog.text and "at step 2" in caplog.text
    steps = [json.loads(line)["step"] for line in (w / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6, 6]  # train records of steps 3-4 were replaced; the last is the evaluation


def test_resume_before_the_first_checkpoint_starts_over(full4, tmp_path):
    import shutil

    w = tmp_path / "run"
    shutil.copytree(full4, w)
    for f in (w / "checkpoints").iterdir():  # killed before its first save completed
        f.unlink()
    train.fit(smoke(steps=2), recipe.build, str(w), resume=True)
    assert [json.loads(line)["step"] for line in (w / "metrics.jsonl").read_text().splitlines()] == [1, 2, 2]


class NaNAfterFirst(PairedGAN):
    """A GAN whose L1 term turns NaN once the G optimizer has taken 2 steps."""

    def generator_terms(self, batch, y_fake, training=True):
        import tensorflow as tf

        terms = super().generator_terms(batch, y_fake, training)
        poison = tf.where(self.g_optimizer.iterations >= 2, np.nan, 0.0)
        terms["l1"] = terms["l1"] + poison
        return terms


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    def build(cfg):
        gan = recipe.build(cfg)
        return NaNAfterFirst(gan.generator, gan.discriminator, cfg.loss.weights, name="nan")

    w = tmp_path / "run"
    with pytest.raises(train.TrainingError, match=r"non-finite .*'l1'.* at step 3"):
        train.fit(smoke(steps=4), build, str(w))
    ckpts = sorted(p.name for p in (w / "checkpoints").glob("*.index"))
    assert ckpts == ["ckpt-2.index"]


def run_recipe(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, str(REPO / "recipes" / "pix2pix_facades.py"), *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


def test_summary_prints_golden_parameter_counts():
    proc = run_recipe("--summary")
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = json.loads(proc.stdout)
    assert counts["generator"] == 54_413_955 and counts["discriminator"] == 2_768_705


def test_cli_errors_are_one_clear_line(tmp_path, capsys):
    # in-process (the recipe's own main, argv as typed); the subprocess path: test_summary_prints_golden_parameter_counts
    def main(*argv):
        rc = train.main(recipe.config, argv=list(argv), description=recipe.__doc__, demo_config_fn=recipe.demo_config)
        return rc, capsys.readouterr().err

    rc, err = main("--set", "optim.lrr=1", "--summary")
    assert rc == 1 and "unknown config key 'optim.lrr'" in err and len(err.strip().splitlines()) == 1
    rc, err = main("--workdir", str(tmp_path / "nothing"), "--resume")
    assert rc == 1 and "holds no run" in err and "Traceback" not in err
    rc, err = main("--data", str(tmp_path / "missing"), "--workdir", str(tmp_path / "w"))
    assert rc == 1 and "missing" in err and "Traceback" not in err


TINY = ["--set", "generator.ngf=4", "--set", "discriminator.ndf=4", "--set", "train.log_every=1",
        "--set", "data.num_samples=1"]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(tmp_path):
    """SIGKILL a real run (the recipe's CLI, on the real facades when present) after its first checkpoint, resume
    it with ``--resume``, compare with an uninterrupted run.

    No race with the clock: wherever the kill lands (step K), the killed run is
    resumed to K + 10 steps and the uninterrupted reference trains K + 10 steps too.
    """
    from tests.helpers import shared_data_dir

    facades = shared_data_dir() / "facades_train"
    data = ["--data", str(facades), "--set", "data.eval_path=" + str(facades)] if facades.is_dir() else []
    args = [*data, "--set", "generator.name=unet_5", "--set", "data.load_size=36", "--set", "data.crop_size=32",
            *TINY, "--set", "discriminator.n_layers=2", "--set", "train.checkpoint_every=2",
            "--set", "train.deterministic=true", "--set", "train.eval_at_end=false"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(REPO / "recipes" / "pix2pix_facades.py"), "--workdir", str(killed),
                             "--steps", "100000", *args], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    while not (killed / "checkpoints" / "checkpoint").exists() and proc.poll() is None:
        time.sleep(0.05)  # the index file is written last: a checkpoint is complete
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = [int(p.name.split("-")[1].split(".")[0]) for p in (killed / "checkpoints").glob("ckpt-*.index")]
    assert saved and max(saved) < 100000, saved  # killed mid-run, after at least one complete checkpoint
    total = max(saved) + 10
    ref = tmp_path / "ref"
    assert run_recipe("--workdir", str(ref), "--steps", str(total), *args).returncode == 0
    proc = run_recipe("--workdir", str(killed), "--steps", str(total), "--resume", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resumed from" in proc.stderr and f"at step {max(saved)}" in proc.stderr
    a, b = weights_of(ref), weights_of(killed)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # every step logged once: the records of steps the kill cut short were replaced
    steps = [json.loads(line)["step"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, total + 1))
    cfg = json.loads((killed / "config.json").read_text())
    assert cfg["data"]["direction"] == ("BtoA" if data else "AtoB") and cfg["generator"]["name"] == "unet_5"


def test_evaluate_workdirs_gives_one_row_per_run(full4, tmp_path, capsys):
    from tfi2i import cli

    import shutil

    runs = [tmp_path / "pix2pix_a", full4]
    shutil.copytree(full4, runs[0])  # another run directory (its own name and eval.json)
    out = tmp_path / "report"
    assert cli.main(["evaluate", "--workdir", str(runs[0]), "--workdir", str(runs[1]), "--out", str(out), "--no-progress"]) == 0
    table = (out / "report.md").read_text()
    assert "pix2pix_a" in table and "pix2pix_b" in table and "PSNR" in table
    report = json.loads((out / "report.json").read_text())
    for w in runs:  # the same numbers the training run reported at its end
        final = json.loads((w / "eval.json").read_text())
        for key in ("l1", "mse", "ssim"):
            assert abs(report[w.name][key] - final[key]) < 1e-6
    assert len(list((runs[0] / "eval_pred").glob("*.png"))) == final["num_images"]
    assert cli.main(["evaluate", "--workdir", str(tmp_path / "nope")]) == 1
    assert "no config.json" in capsys.readouterr().err


def _event_tags(logdir):
    import tensorflow as tf

    tags = set()
    for path in pathlib.Path(logdir).glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags.update(v.tag for v in event.summary.value)
    return tags


@pytest.mark.parametrize("fields", [{"mixed_precision": True}, {"jit": "on"}], ids=["mixed_float16", "xla"])
def test_speed_options_train_through_the_entry_point(tmp_path, fields):
    import keras

    w = tmp_path / "run"
    logs = train.fit(smoke(steps=2, **fields), recipe.build, str(w))
    assert logs and all(np.isfinite(v) for v in logs.values())
    assert keras.mixed_precision.global_policy().name == ("mixed_float16" if fields.get("mixed_precision") else "float32")
    keras.mixed_precision.set_dtype_policy("float32")
    tags = _event_tags(w / "logs")
    assert {"train/l1", "train/g_gan", "train/d_real", "train/lr", "samples/grid"} <= tags
