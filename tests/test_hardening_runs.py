"""Runs that are not alone (issue 15, cases 5-10): the run lock, resume with changed settings, a torn
``metrics.jsonl``, one checkpoint fallback for resume and `load_model` (export, translate) with ``ckpt-N_temp``
cleanup, a full disk (also with ``keep_checkpoints=1`` and a checkpoint the disk cut short after a write that
reported success), non-finite weights before a checkpoint."""

import errno
import glob
import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import REPO, demo_cache, load_recipe
from tfi2i import config as C
from tfi2i import train
from tfi2i.checkpoint import CheckpointWriteError, TrainingState, checkpoint_paths
from tfi2i.gan import PairedGAN
from tfi2i.run_lock import LOCK_NAME, RunLock, RunLockError

recipe = load_recipe("pix2pix_facades")


def smoke(**train_fields):
    """The recipe's tiny smoke run (64x64 crops, ngf=ndf=4), without the end-of-run evaluation and export."""
    fields = {"deterministic": True, "eval_at_end": False, "export_at_end": False, **train_fields}
    return C.replace(recipe.smoke_config(), train=fields)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One 4-step run (checkpoints at steps 2 and 4) that tests copy and change."""
    with pytest.MonkeyPatch.context() as mp:  # the demo cache of conftest's (function-scoped) fixture
        mp.setenv("TFI2I_CACHE", str(demo_cache(tmp_path_factory)))
        workdir = tmp_path_factory.mktemp("hardening") / "run"
        train.fit(smoke(steps=4), recipe.build, str(workdir))
    return workdir


def copy_run(trained, tmp_path, name="run"):
    return shutil.copytree(trained, tmp_path / name)


def metric_steps(workdir):
    return [json.loads(line)["step"] for line in (workdir / "metrics.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------ 5. one trainer per run directory
def _holder(workdir):
    """A child process holding the lock of ``workdir`` until killed."""
    code = ("import sys, time; from tfi2i.run_lock import RunLock; RunLock(sys.argv[1]).acquire(); "
            "print('locked', flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(workdir)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_trainer_is_refused_while_another_process_holds_the_run(trained, tmp_path, caplog):
    assert not (trained / LOCK_NAME).exists()  # the fixture's run released its lock
    w = tmp_path / "run"
    proc = _holder(w)
    try:
        with pytest.raises(train.TrainingError) as err:
            train.fit(smoke(steps=1), recipe.build, str(w))
        message = str(err.value)
        assert str(w) in message and f"pid {proc.pid}" in message and socket.gethostname() in message
        assert "another training process" in message and "another --workdir" in message
        assert not (w / "config.json").exists() and not (w / "checkpoints").exists()  # nothing mixed in
    finally:
        proc.kill()  # SIGKILL: no clean-up of its own
        proc.wait()
    assert json.loads((w / LOCK_NAME).read_text())["pid"] == proc.pid  # the dead holder's record stays
    with caplog.at_level("WARNING", logger="tfi2i"):
        with RunLock(w):
            assert json.loads((w / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert "stale lock" in caplog.text and f"pid {proc.pid}" in caplog.text
    assert not (w / LOCK_NAME).exists()  # released on exit


def test_lock_records_live_dead_reused_and_foreign(tmp_path, caplog):
    w = tmp_path / "run"
    w.mkdir()
    lock = w / LOCK_NAME
    host = socket.gethostname()
    lock.write_text(json.dumps({"pid": os.getpid(), "host": host}))  # a live process (this one)
    with pytest.raises(RunLockError, match=f"pid {os.getpid()} on host {host}"):
        RunLock(w).acquire()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    for record in ({"pid": int(dead.stdout), "host": host},  # killed
                   {"pid": os.getpid(), "host": host, "start_ticks": 1},  # the pid now belongs to another process
                   "{\"pid\": 12"):  # torn
        lock.write_text(record if isinstance(record, str) else json.dumps(record))
        with caplog.at_level("WARNING", logger="tfi2i"):
            RunLock(w).acquire().release()
        assert "stale lock" in caplog.text
        caplog.clear()
    lock.write_text(json.dumps({"pid": 4242, "host": "elsewhere.example", "since": "2024-01-01T00:00:00"}))
    with pytest.raises(train.TrainingError, match=f"pid 4242 on host elsewhere.example.*delete {lock}"):
        train.fit(smoke(steps=1), recipe.build, str(w))
    assert lock.exists()  # another host's lock is never removed by us


def test_resume_without_a_run_leaves_no_folder_and_no_lock(tmp_path):
    with pytest.raises(train.TrainingError, match="holds no run"):
        train.fit(smoke(steps=1), recipe.build, str(tmp_path / "nothing"), resume=True)
    assert not (tmp_path / "nothing").exists()


# ------------------------------------------------------------------ 6. resume with changed settings
def test_resume_refuses_changed_data_network_and_lr_listing_each(trained, tmp_path, capsys):
    w = copy_run(trained, tmp_path)
    before = (w / "config.json").read_text()
    changed = C.override(smoke(steps=6), ["optim.lr=0.5", "generator.ngf=8", "data.path=" + str(tmp_path)])
    with pytest.raises(train.TrainingError) as err:
        train.fit(changed, recipe.build, str(w), resume=True)
    message = str(err.value)
    assert str(w) in message and "may not change" in message
    assert "optim.lr: 0.0002 -> 0.5" in message and "generator.ngf: 4 -> 8" in message
    assert f'data.path: "" -> "{tmp_path}"' in message
    assert "train.steps" not in message  # a safe change is not listed as a problem
    assert "another --workdir" in message and "train.init_from" in message
    assert (w / "config.json").read_text() == before and not (w / LOCK_NAME).exists()
    # the CLI: one "error:" block, exit 1, no traceback
    code = train.main(lambda: smoke(), argv=["--workdir", str(w), "--resume", "--steps", "6", "--set",
                                             "optim.lr=0.5"])
    err_text = capsys.readouterr().err
    assert code == 1 and "error: --resume" in err_text and "optim.lr: 0.0002 -> 0.5" in err_text
    assert "Traceback" not in err_text


def test_resume_applies_and_records_safe_changes(trained, tmp_path, caplog):
    w = copy_run(trained, tmp_path)
    with caplog.at_level("INFO", logger="tfi2i"):
        train.fit(smoke(steps=6, log_every=2, checkpoint_every=3), recipe.build, str(w), resume=True)
    assert "train.steps 4 -> 6" in caplog.text and "train.log_every 1 -> 2" in caplog.text
    saved = json.loads((w / "config.json").read_text())
    assert saved["train"]["steps"] == 6 and saved["train"]["log_every"] == 2
    history = [json.loads(line) for line in (w / "resumes.jsonl").read_text().splitlines()]
    assert history[-1]["changed"] == {"train.checkpoint_every": [2, 3], "train.log_every": [1, 2],
                                      "train.steps": [4, 6]}
    assert metric_steps(w) == [1, 2, 3, 4, 6]  # logged every 2 steps after the resume
    assert sorted(p.name for p in (w / "checkpoints").glob("*.index")) == ["ckpt-2.index", "ckpt-4.index",
                                                                           "ckpt-6.index"]


# ------------------------------------------------------------------ 7. a torn metrics.jsonl
def test_torn_last_metrics_line_is_dropped_on_resume(trained, tmp_path, caplog):
    w = copy_run(trained, tmp_path)
    with open(w / "metrics.jsonl", "a") as f:
        f.write('{"split": "train", "step": 5, "g_gan": 0.7')  # killed mid-write
    with caplog.at_level("WARNING", logger="tfi2i"):
        assert train.fit(smoke(steps=4), recipe.build, str(w), resume=True) == {}  # nothing left to train
    assert "metrics.jsonl: dropped its torn last line 5" in caplog.text
    assert metric_steps(w) == [1, 2, 3, 4] and (w / "metrics.jsonl").read_text().endswith("}\n")


def test_corrupt_metrics_line_elsewhere_names_file_and_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2, oops\n{"step": 3}\n')
    with pytest.raises(train.TrainingError, match=rf"{path}, line 2: not a JSON record"):
        train._truncate_jsonl(str(path), 2)
    path.write_text('{"step": 1}\n[2]\n{"step": 3}\n')
    with pytest.raises(train.TrainingError, match="line 2: not a JSON record"):
        train._truncate_jsonl(str(path), 2)


def test_append_after_a_torn_line_starts_a_new_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2, "l1"')
    train._append_jsonl(str(path), {"step": 3})
    assert path.read_text().splitlines()[-1] == '{"step": 3}'


# ------------------------------------------------------------------ 8. one checkpoint fallback; ckpt-N_temp
def test_load_model_and_export_fall_back_past_a_truncated_latest_checkpoint(trained, tmp_path, caplog):
    from tfi2i import cli
    from tfi2i.runs import RunError, load_model

    w = copy_run(trained, tmp_path)
    for data in (w / "checkpoints").glob("ckpt-4.data-*"):
        data.write_bytes(b"truncated")  # a kill or a full disk mid-write
    with RunLock(w):  # readers take no lock: they work while a run trains
        with caplog.at_level("WARNING", logger="tfi2i"):
            loaded = load_model(w)
        assert loaded.checkpoint.endswith("ckpt-2") and "ckpt-4 is unreadable" in caplog.text
        assert cli.main(["export", "--workdir", str(w), "--out", str(tmp_path / "served")]) == 0
    assert (tmp_path / "served" / "1" / "saved_model.pb").is_file()
    for data in (w / "checkpoints").glob("ckpt-2.data-*"):
        data.write_bytes(b"truncated")
    with pytest.raises(RunError, match="no readable checkpoint .*ckpt-2, ckpt-4"):
        load_model(w)


def test_stale_temp_folders_are_ignored_by_loading_and_removed_by_the_next_trainer(trained, tmp_path, caplog):
    from tfi2i.runs import load_model

    w = copy_run(trained, tmp_path)
    temp = w / "checkpoints" / "ckpt-6_temp"
    temp.mkdir()
    (temp / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"\0" * 100_000)  # a killed write
    assert load_model(w).checkpoint.endswith("ckpt-4") and temp.is_dir()  # readers never delete
    with caplog.at_level("WARNING", logger="tfi2i"):
        train.fit(smoke(steps=4), recipe.build, str(w), resume=True)
    assert not temp.exists() and "ckpt-6_temp" in caplog.text
    assert sorted(p.name for p in (w / "checkpoints").iterdir()) == [
        "checkpoint", "ckpt-2.data-00000-of-00001", "ckpt-2.index", "ckpt-4.data-00000-of-00001", "ckpt-4.index"]


# ------------------------------------------------------------------ 9. a full disk
def _disk_full(kind):
    import tensorflow as tf

    if kind == "resource_exhausted":
        return tf.errors.ResourceExhaustedError(None, None, "ckpt: No space left on device")
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("where, kind", [("checkpoint", "oserror"), ("samples", "resource_exhausted"),
                                         ("metrics", "oserror")])  # each writer, each kind of error
def test_full_disk_is_one_message_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch, where, kind):
    from tfi2i.runs import load_model

    w = tmp_path / "run"
    real_save, real_samples, real_append = TrainingState.save, train.write_samples, train._append_jsonl

    def save(self, step, epoch):
        if where == "checkpoint" and step == 4:
            (w / "checkpoints" / "ckpt-4_temp").mkdir()  # what a write cut short leaves
            raise _disk_full(kind)
        return real_save(self, step, epoch)

    def samples(model, batch, workdir, step, writer=None):
        if where == "samples" and step == 4:
            raise _disk_full(kind)
        return real_samples(model, batch, workdir, step, writer)

    def append(path, record):
        if where == "metrics" and record.get("step") == 3:
            raise _disk_full(kind)
        return real_append(path, record)

    monkeypatch.setattr(TrainingState, "save", save)
    monkeypatch.setattr(train, "write_samples", samples)
    monkeypatch.setattr(train, "_append_jsonl", append)
    with pytest.raises(train.TrainingError) as err:
        train.fit(smoke(steps=4), recipe.build, str(w))
    message = str(err.value)
    assert message.startswith("disk full: no space left on the device of " + str(w)), message
    assert " free; at least " in message and " are needed to write a checkpoint" in message
    assert "ckpt-2 (step 2), is intact" in message and "--resume" in message
    assert "Traceback" not in message and len(message.splitlines()) == 1
    assert sorted(p.name for p in (w / "checkpoints").iterdir()) == [
        "checkpoint", "ckpt-2.data-00000-of-00001", "ckpt-2.index"]  # no partial ckpt-4, no temp folder
    assert load_model(w).checkpoint.endswith("ckpt-2") and not (w / LOCK_NAME).exists()


def test_only_disk_errors_count_as_a_full_disk():
    import tensorflow as tf

    assert train._is_disk_full(_disk_full("oserror")) and train._is_disk_full(_disk_full("resource_exhausted"))
    assert train._is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not train._is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not train._is_disk_full(tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor"))


def _cut_short_after_write(monkeypatch, step):
    """Checkpoint ``step``'s data file cut in half after TensorFlow's write reported success, before the manager
    registers it (and, with ``max_to_keep``, sweeps the old ones): what a full disk leaves when the error shows only
    on reading (delayed allocation, network file systems), or a crash before the data reached the disk."""
    from tensorflow.python.checkpoint import checkpoint as tf_checkpoint

    real = tf_checkpoint._execute_callbacks  # TF runs the write callbacks (the manager's record + sweep) here

    def cut(callbacks, save_path):
        if os.path.basename(save_path) == f"ckpt-{step}":
            for data in glob.glob(save_path + ".data-*"):
                with open(data, "r+b") as f:
                    f.truncate(os.path.getsize(data) // 2)
        return real(callbacks, save_path)

    monkeypatch.setattr(tf_checkpoint, "_execute_callbacks", cut)


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_keep_one_checkpoint_and_a_full_disk_keep_the_last_good_one(tmp_path, monkeypatch):
    from tfi2i.runs import load_model

    w = tmp_path / "run"
    _cut_short_after_write(monkeypatch, 4)
    real_usage = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real_usage(path)._replace(free=4096))
    with pytest.raises(train.TrainingError) as err:
        train.fit(smoke(steps=4, keep_checkpoints=1), recipe.build, str(w))
    message = str(err.value)
    assert message.startswith("disk full: no space left on the device of " + str(w)), message
    assert "ckpt-2 (step 2), is intact" in message and "--resume" in message and len(message.splitlines()) == 1
    assert _files(w / "checkpoints") == ["checkpoint", "ckpt-2.data-00000-of-00001", "ckpt-2.index"]
    assert load_model(w).checkpoint.endswith("ckpt-2") and not (w / LOCK_NAME).exists()
    monkeypatch.undo()  # space freed: the run resumes, and keeps its one checkpoint
    train.fit(smoke(steps=4, keep_checkpoints=1), recipe.build, str(w), resume=True)
    assert _files(w / "checkpoints") == ["checkpoint", "ckpt-4.data-00000-of-00001", "ckpt-4.index"]
    assert checkpoint_paths(w / "checkpoints") == [str(w / "checkpoints" / "ckpt-4")]


def test_checkpoints_are_trimmed_only_after_the_new_one_reads_back(tmp_path, monkeypatch):
    import tensorflow as tf

    d = tmp_path / "checkpoints"
    net = tf.train.Checkpoint(v=tf.Variable(tf.range(50_000, dtype=tf.float32)))
    state = TrainingState(str(d), keep=1, net=net)
    state.save(2, 0)
    _cut_short_after_write(monkeypatch, 4)
    with pytest.raises(CheckpointWriteError, match=r"ckpt-4 was written but cannot be read back .*it was removed "
                                                   r"and the previous checkpoint, .*ckpt-2 \(step 2\), is kept"):
        state.save(4, 0)
    assert _files(d) == ["checkpoint", "ckpt-2.data-00000-of-00001", "ckpt-2.index"]
    assert checkpoint_paths(d) == [str(d / "ckpt-2")] and state.last_good() == (str(d / "ckpt-2"), 2)
    assert state.save(6, 0) == str(d / "ckpt-6")  # the next write is fine: the one checkpoint is the new one
    assert _files(d) == ["checkpoint", "ckpt-6.data-00000-of-00001", "ckpt-6.index"]
    assert checkpoint_paths(d) == [str(d / "ckpt-6")]

    state = TrainingState(str(d), keep=2, net=net)  # a resumed run with another keep_checkpoints
    for step in (8, 10, 12):
        state.save(step, 0)
    assert checkpoint_paths(d) == [str(d / "ckpt-10"), str(d / "ckpt-12")]
    assert _files(d) == ["checkpoint", "ckpt-10.data-00000-of-00001", "ckpt-10.index", "ckpt-12.data-00000-of-00001",
                         "ckpt-12.index"]
    monkeypatch.undo()
    first = TrainingState(str(tmp_path / "fresh"), keep=1, net=net)
    _cut_short_after_write(monkeypatch, 1)
    with pytest.raises(CheckpointWriteError, match="no earlier checkpoint exists"):
        first.save(1, 0)
    assert _files(tmp_path / "fresh") == []  # no index naming a removed checkpoint


# ------------------------------------------------------------------ 10. non-finite weights before a checkpoint
@pytest.mark.parametrize("lr, stop", [("1e8", "non-finite weights at step 1"), ("1e10", "non-finite loss term")])
def test_huge_learning_rate_writes_no_checkpoint_and_says_none_exists(tmp_path, lr, stop):
    # lr 1e8: the losses of step 1 are finite, but D's forward pass in G's update (with D's new weights) fills a
    # batch-norm moving variance with inf, which the checkpoint of step 1 would have held; 1e10: step 1's loss is NaN
    w = tmp_path / "run"
    with pytest.raises(train.TrainingError) as err:
        train.fit(C.override(smoke(steps=2, checkpoint_every=1), [f"optim.lr={lr}"]), recipe.build, str(w))
    message = str(err.value)
    assert stop in message
    if lr == "1e8":
        assert "moving_variance" in message and "stopped without writing checkpoint 1" in message
    assert "no checkpoint was written" in message and "last good checkpoint" not in message
    assert not list(w.glob("checkpoints/ckpt-*"))


class InfVarianceAfterTwo(PairedGAN):
    """A GAN whose first batch-norm moving variance becomes inf from the 3rd step on (losses stay finite)."""

    def train_step(self, batch):
        import tensorflow as tf

        logs = super().train_step(batch)
        var = next(v for v in self.generator.variables if "moving_variance" in v.path)
        var.assign(tf.where(self.g_optimizer.iterations >= 3, tf.fill(var.shape, np.inf), var))
        return logs


def test_non_finite_weights_stop_before_the_checkpoint_and_name_the_last_good_one(tmp_path):
    def build(cfg):
        gan = recipe.build(cfg)
        return InfVarianceAfterTwo(gan.generator, gan.discriminator, cfg.loss.weights, name="inf_var")

    w = tmp_path / "run"
    with pytest.raises(train.TrainingError) as err:
        train.fit(smoke(steps=4, sample_every=100), build, str(w))
    message = str(err.value)
    assert "non-finite weights at step 4" in message and "moving_variance" in message
    assert "stopped without writing checkpoint 4" in message
    assert "last good checkpoint" in message and "ckpt-2 (step 2)" in message
    assert sorted(p.name for p in (w / "checkpoints").glob("*.index")) == ["ckpt-2.index"]
