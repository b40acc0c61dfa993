"""Sampled styles (`tfi2i.style_prior`): the shrunk Gaussian fit by hand, the prior layer, vector noise, sharing."""

import numpy as np
import pytest
import tensorflow as tf

from tfi2i import style_prior
from tfi2i.contract import Contract, NoiseSpec
from tfi2i.layers.style import StylePrior
from tfi2i.networks.grit import STYLE_NOISE, grit_generator, sampled_style_generator


def test_fit_is_the_sample_covariance_shrunk_by_d_over_n_plus_d():
    codes = np.array([[1.0, 2.0], [3.0, 4.0], [2.0, 6.0]])  # mean (2, 4); deviations (-1, -2), (1, 0), (0, 2)
    prior = style_prior.fit_gaussian(codes)
    np.testing.assert_allclose(prior["mean"], [2.0, 4.0])
    # S = [[1, 1], [1, 4]] (n - 1 = 2); a = 2 / 5; tr(S) / d = 2.5
    a = 2.0 / 5.0
    cov = (1 - a) * np.array([[1.0, 1.0], [1.0, 4.0]]) + a * 2.5 * np.eye(2)
    assert float(prior["shrinkage"]) == pytest.approx(a) and int(prior["count"]) == 3
    scale = prior["scale"].astype(np.float64)
    np.testing.assert_allclose(scale @ scale.T, cov, rtol=1e-6)
    assert scale[0, 1] == 0.0  # lower triangular (Cholesky)


def test_one_code_gives_an_isotropic_prior_and_bad_shapes_are_refused():
    prior = style_prior.fit_gaussian(np.zeros((1, 4)))
    assert np.all(np.isfinite(prior["scale"])) and float(prior["shrinkage"]) == pytest.approx(0.8)
    with pytest.raises(style_prior.StylePriorError, match="shape"):
        style_prior.fit_gaussian(np.zeros((0, 4)))


def test_prior_layer_is_mean_plus_scale_times_eps():
    layer = StylePrior(2)
    layer(tf.zeros((1, 2)))
    layer.mean.assign([1.0, -1.0])
    layer.scale.assign([[2.0, 0.0], [1.0, 3.0]])
    out = layer(tf.constant([[1.0, 2.0]])).numpy()
    np.testing.assert_allclose(out, [[1.0 + 2.0, -1.0 + 1.0 + 6.0]])


def test_vector_noise_is_drawn_per_example_seed():
    contract = Contract(noise=(NoiseSpec("n", 1, 2), NoiseSpec(STYLE_NOISE, 5, 0)), tileable=False)
    a = contract.draw_noise(8, 8, tf.constant([3, 4], tf.int64))
    b = contract.draw_noise(4, 4, tf.constant([4], tf.int64))
    assert a[STYLE_NOISE].shape == (2, 5) and a["n"].shape == (2, 4, 4, 1)
    np.testing.assert_array_equal(a[STYLE_NOISE][1], b[STYLE_NOISE][0])  # independent of size and batch
    assert not np.array_equal(a[STYLE_NOISE][0], a[STYLE_NOISE][1])
    assert Contract.from_dict(contract.to_dict()) == contract


def test_sampled_generator_shares_the_trained_decoder():
    """With eps = L^-1 (E_S(style) - mean) the sampled-style generator gives G(x, style) exactly."""
    g = grit_generator(5, ngf=4, n_downsample=3, nsf=4, style_dim=6)
    rng = np.random.default_rng(0)
    mean, scale = rng.normal(size=6), np.tril(rng.normal(size=(6, 6))) + 3 * np.eye(6)
    sampled = sampled_style_generator(g, mean, scale)
    assert sorted(sampled.input) == ["noise_1", "noise_2", "noise_3", STYLE_NOISE, "x"]
    assert not sampled.trainable_weights or all(
        any(w is v for v in g.trainable_weights) for w in sampled.trainable_weights)
    x = rng.random((2, 8, 8, 5)).astype("float32")
    style = rng.random((2, 16, 16, 3)).astype("float32")
    noise = {f"noise_{k}": rng.normal(size=(2, 8 // f, 8 // f, 1)).astype("float32")
             for k, f in zip((1, 2, 3), (4, 2, 1))}
    z = g.get_layer("E_S")(style).numpy()
    eps = np.linalg.solve(scale, (z - mean).T).T.astype("float32")
    want, got = g({"x": x, "style": style, **noise}), sampled({"x": x, STYLE_NOISE: eps, **noise})
    for name in ("y", "y_rec", "y_res"):
        np.testing.assert_allclose(got[name], want[name], atol=1e-5)
