"""pix2pixHD: golden parameter counts, the pooling and schedule rules, Adam's restart, and training runs.

The runs train the recipe's tiny smoke configs (`recipes/pix2pixhd_cityscapes.smoke_config`: small widths,
256x128 with scale_width) on the real full-resolution Cityscapes triples of ``../shared/data/cityscapes_fullres``
(the label-map demo set when they are absent) and prove the warm start (``train.init_from``) and the fixed-global phase (``hd.niter_fix_global``)
across a kill and resume.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import load_recipe, shared_data_dir
from tfi2i import train
from tfi2i.config import replace
from tfi2i.networks import pix2pixhd as nets
from tfi2i.optimizers import TorchAdam
from tfi2i.schedules import Pix2PixHDLinearDecay


def _count(models):
    return int(sum(np.prod(v.shape) for m in models for v in m.trainable_weights))


def _recipe(name="pix2pixhd_cityscapes"):
    return load_recipe(name)


# ----------------------------------------------------------------- golden counts (NVIDIA's print_network)
def test_global_generator_count_equals_reference():
    g = nets.global_generator({"x": 35, "instances": 1})  # 35 labels + instance edges, ngf 64, 4 down, 9 blocks
    assert _count([g]) == 182_546_755


@pytest.mark.parametrize("num_d, expected", [(2, 5_603_202), (3, 8_404_803)])
def test_multiscale_discriminator_count_equals_reference(num_d, expected):
    assert _count(nets.multiscale_discriminator(39, num_d=num_d)) == expected


def test_local_enhancer_count():
    # the global part (ngf 64, without its last 7x7 conv: 182,546,755 - 64*3*49 - 3 = 182,537,344) plus the
    # local branch at ngf 32: 7x7 conv 36->32 (56,480), 3x3/2 conv 32->64 (18,496), 3 blocks of two 3x3 64->64
    # convs (3 * 2 * 36,928 = 221,568), transposed conv 64->32 (18,464), 7x7 conv 32->3 (4,707)
    expected = 182_546_755 - (64 * 3 * 49 + 3) + 56_480 + 18_496 + 221_568 + 18_464 + 4_707
    assert _count([nets.local_enhancer({"x": 35, "instances": 1}, ngf=32)]) == expected == 182_857_059


def test_layer_names_follow_the_reference_state_dict():
    g = nets.global_generator({"x": 5, "instances": 1}, ngf=4, n_downsample=2, n_blocks=1)
    names = {layer.name for layer in g.layers if layer.weights}
    # model.1 (7x7), model.4 / model.7 (downsampling), model.10 (block), model.11 / model.14 (up), model.18 (7x7)
    assert names == {"model_1", "model_4", "model_7", "model_10_conv_block_1", "model_10_conv_block_5", "model_11",
                     "model_14", "model_18"}
    d = nets.multiscale_discriminator(9, ndf=4, num_d=2)
    assert [m.name for m in d] == ["D_scale1", "D_scale0"]  # entry 0 judges the full-size pair: NVIDIA's scale1


# ----------------------------------------------------------------- rules
def test_avg_pool_excludes_the_padding():
    x = tf.reshape(tf.range(16, dtype=tf.float32), [1, 4, 4, 1])
    out = nets.downsample(x)[0, ..., 0].numpy()
    # windows (rows/cols) {0,1} x {0,1}, {0,1} x {1,2,3}, {1,2,3} x {0,1}, {1,2,3} x {1,2,3} of [[0..3], ..., [12..15]]
    expected = [[np.mean([0, 1, 4, 5]), np.mean([1, 2, 3, 5, 6, 7])],
                [np.mean([4, 5, 8, 9, 12, 13]), np.mean([5, 6, 7, 9, 10, 11, 13, 14, 15])]]
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert nets.downsample(tf.zeros([1, 5, 7, 2])).shape == (1, 3, 4, 2)  # floor((n - 1) / 2) + 1


def test_local_enhancer_pyramid_and_discriminator_shapes():
    g = nets.local_enhancer({"x": 3}, ngf=2, n_downsample_global=1, n_blocks_global=1, n_blocks_local=1)
    assert g({"x": tf.zeros([1, 8, 16, 3])})["y"].shape == (1, 8, 16, 3)
    outs = nets.judge_scales(nets.multiscale_discriminator(6, ndf=2, num_d=2), tf.zeros([1, 64, 128, 6]))
    # kernel 4, padding 2: 64 -> 33 -> 17 -> 9 -> 10 -> 11 (stride 2, 2, 2, 1, 1); the second scale from 32x64
    assert [o[1].shape[1:3] for o in outs] == [(11, 19), (7, 11)]
    assert [len(o[0]) for o in outs] == [4, 4]  # n_layers + 1 features


def test_nvidia_learning_rate_rule():
    s = Pix2PixHDLinearDecay(1.0, steps_per_epoch=1, n_epochs=2, n_epochs_decay=4)
    # epochs 1..3 at the base rate; then 1 - 1/4 per epoch; the last (6th) at 1/4, never 0
    np.testing.assert_allclose([float(s(step)) for step in range(6)], [1, 1, 1, 0.75, 0.5, 0.25], rtol=1e-6)


def test_torch_adam_restart_equals_a_fresh_optimizer():
    grads = [tf.constant([0.3, -1e-6]), tf.constant([2.0, 0.5]), tf.constant([-0.1, 0.02])]
    v = tf.Variable([1.0, 2.0])
    opt = TorchAdam(1e-2, beta_1=0.5, beta_2=0.999, restartable=True)
    opt.build([v])
    opt.apply([grads[0]], [v])
    opt.restart()
    for g in grads[1:]:
        opt.apply([g], [v])
    fresh_v = tf.Variable([1.0, 2.0])
    first = TorchAdam(1e-2, beta_1=0.5, beta_2=0.999)
    first.apply([grads[0]], [fresh_v])
    fresh = TorchAdam(1e-2, beta_1=0.5, beta_2=0.999)
    for g in grads[1:]:
        fresh.apply([g], [fresh_v])
    np.testing.assert_allclose(v.numpy(), fresh_v.numpy(), rtol=1e-6)
    assert int(opt.restart_iteration.numpy()) == 1 and int(opt.iterations.numpy()) == 3


def test_fixed_global_needs_a_local_enhancer():
    from tfi2i.config import ConfigError
    from tfi2i.pix2pixhd import HDSection

    with pytest.raises(ConfigError, match="needs hd.netG=local"):
        HDSection(netG="global", niter_fix_global=2)


# ----------------------------------------------------------------- training runs
@pytest.fixture(scope="module")
def label_demo(tmp_path_factory):
    """The real full-resolution Cityscapes triples (pix2pixHD's layout) when present, else the label-map demo."""
    real = shared_data_dir() / "cityscapes_fullres"
    if (real / "train_label").is_dir():
        return {"path": str(real)}  # 2048x1024 -> 256x128 (scale_width), x = labelIds, y = photo
    from tfi2i.data.demo import make_label_demo

    path = make_label_demo(tmp_path_factory.mktemp("hd") / "labels", num_train=4, num_val=1, size=(64, 128),
                           num_classes=35)
    return {"path": str(path), "direction": "BtoA", "load_size": (64, 128), "crop_size": (64, 128)}


def _smoke(task, data, **kw):
    cfg = _recipe().smoke_config(task, data["path"], **kw)
    return replace(cfg, data=data, train={"eval_at_end": False})


def _weights(workdir, step=None):
    """``(G layers, D layers)`` -> weight arrays of a run's latest checkpoint (or of ``ckpt-<step>``)."""
    from tfi2i.checkpoint import model_objects
    from tfi2i.runs import builder_of, load_config, load_model

    if step is None:
        model = load_model(workdir).model
    else:
        cfg = load_config(workdir)
        model = builder_of(cfg)(cfg)
        tf.train.Checkpoint(**model_objects(model)).restore(f"{workdir}/checkpoints/ckpt-{step}").expect_partial()
    return ({layer.name: [w.numpy() for w in layer.weights] for layer in model.generator.layers if layer.weights},
            {f"{d.name}/{layer.name}": [w.numpy() for w in layer.weights]
             for d in model.discriminators for layer in d.layers if layer.weights})


@pytest.fixture(scope="module")
def global_run(label_demo, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("hd") / "global")
    logs = train.fit(replace(_smoke("512p", label_demo), train={"steps": 2}), workdir=workdir)
    assert set(logs) >= {"g_gan", "g_feat", "g_vgg", "d_real", "d_fake"}
    return workdir


def test_local_run_warm_start_and_fixed_global_phase_survive_kill_and_resume(global_run, label_demo, tmp_path):
    # the VGG term is off here to keep the test short: it does not touch the phases or the resume
    cfg = _smoke("1024p", label_demo, variant="no_vgg", init_from=global_run)
    assert cfg.hd.niter_fix_global == 1 and cfg.data.num_train == 2  # phase 1 = steps 1-2, then all of G
    from tests.helpers import killed_copy

    cfg = replace(cfg, train={"checkpoint_every": 1, "keep_checkpoints": 10})
    straight = str(tmp_path / "straight")
    train.fit(cfg, workdir=straight)
    killed = str(killed_copy(straight, 1, tmp_path / "killed"))  # as a kill after step 1 (inside phase 1) leaves it
    train.fit(cfg, workdir=killed, resume=True)  # resumes across the phase switch

    source_g, _ = _weights(global_run)
    g_a, d_a = _weights(straight)
    g_b, d_b = _weights(killed)
    for name in g_a:
        for a, b in zip(g_a[name], g_b[name]):
            np.testing.assert_array_equal(a, b, err_msg=f"{name}: resumed run differs")
    for name in d_a:
        for a, b in zip(d_a[name], d_b[name]):
            np.testing.assert_array_equal(a, b, err_msg=f"{name}: resumed run differs")

    g_1, d_1 = _weights(straight, step=2)  # the end of the fixed-global phase
    global_layers = [n for n in g_1 if n.startswith("model_")]
    local_layers = [n for n in g_1 if n.startswith("model1_")]
    assert global_layers and local_layers
    for name in global_layers:  # warm-started from the global run and untouched during phase 1
        for a, b in zip(g_1[name], source_g[name]):
            np.testing.assert_array_equal(a, b, err_msg=f"{name} changed while the global part is fixed")
    assert any(not np.array_equal(a, b) for n in local_layers for a, b in zip(g_1[n], g_a[n])), \
        "the local enhancer did not train"
    assert any(not np.array_equal(a, b) for n in global_layers for a, b in zip(g_a[n], source_g[n])), \
        "the global part never trained after the fixed phase"
    assert any(k.startswith("D_scale2/") for k in d_1)  # num_D 3: the new scale (NVIDIA's scale2) is fresh
    # after the phase switch G's Adam restarted at step 2 (saved in the checkpoint)
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(f"{straight}/checkpoints"))
    restart = [k for k in reader.get_variable_to_shape_map() if "restart_iteration" in k]
    assert restart and int(reader.get_tensor(restart[0])) == 2


def test_warm_start_refuses_an_unrelated_run(label_demo, tmp_path):
    cfg = _smoke("512p", label_demo, init_from=str(tmp_path / "nothing"))
    with pytest.raises(train.TrainingError, match="init_from"):
        train.fit(cfg, workdir=str(tmp_path / "run"))


def test_recipe_summary_and_config(capsys):
    recipe = _recipe()
    assert recipe.main(["--task", "512p", "--data", "x", "--print-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["hd"]["netG"] == "global" and cfg["optim"]["decay_rule"] == "pix2pixhd"
    assert cfg["loss"]["weights"] == {"g_gan": 1.0, "g_feat": 10.0, "g_vgg": 10.0, "d_real": 0.5, "d_fake": 0.5}
    c1024 = recipe.config("1024p", "no_vgg", init_from="runs/x")
    assert (c1024.hd.netG, c1024.hd.ngf, c1024.hd.num_d, c1024.hd.niter_fix_global) == ("local", 32, 3, 10)
    assert c1024.loss.weights["g_vgg"] == 0.0 and c1024.train.init_from == "runs/x"
    assert c1024.data.resize_or_crop == "none" and (c1024.optim.n_epochs, c1024.optim.n_epochs_decay) == (50, 50)
