"""Per-pixel std maps (GRIT Fig. 7) and azimuthally averaged power spectra (GRIT Fig. 9)."""

import csv

import cv2
import numpy as np
import pytest

from tfi2i.metrics import (
    azimuthal_average,
    mean_std,
    per_pixel_std,
    power_spectrum,
    sample_diversity,
    save_spectrum_numbers,
    save_spectrum_plot,
    save_std_heatmap,
    spectrum_of_sets,
)


# --------------------------------------------------------------------------- #
# Diversity
# --------------------------------------------------------------------------- #
def test_per_pixel_std_by_hand():
    # K=3, H=1, W=2, C=2. Pixel (0,0): channel 0 = [0, .3, .6], channel 1 constant.
    s = np.zeros((3, 1, 2, 2), np.float32)
    s[:, 0, 0, 0] = [0.0, 0.3, 0.6]
    s[:, 0, 0, 1] = 0.5
    s[:, 0, 1, 0] = [0.1, 0.1, 0.4]  # mean .2, pop var (.01+.01+.04)/3 = .02
    s[:, 0, 1, 1] = [1.0, 0.0, 0.5]  # mean .5, pop var (.25+.25+0)/3 = 1/6
    std = per_pixel_std(s)
    assert std.shape == (1, 2) and std.dtype == np.float32
    expected = np.array([[np.sqrt(0.06) / 2, (np.sqrt(0.02) + np.sqrt(1 / 6)) / 2]])
    np.testing.assert_allclose(std, expected, rtol=1e-6)
    np.testing.assert_allclose(std, np.std(s.astype(np.float64), axis=0, ddof=0).mean(-1), rtol=1e-6)
    assert mean_std(s) == pytest.approx(expected.mean(), rel=1e-6)


def test_per_pixel_std_rejects_bad_input():
    with pytest.raises(TypeError, match="floating-point"):
        per_pixel_std(np.zeros((3, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="K, H, W, C"):
        per_pixel_std(np.zeros((3, 4, 4), np.float32))
    with pytest.raises(ValueError, match="at least 2"):
        per_pixel_std(np.zeros((1, 4, 4, 3), np.float32))


def test_deterministic_generator_gives_zero():
    x = np.random.default_rng(0).random((2, 8, 8, 3)).astype(np.float32)
    std = sample_diversity(lambda inp: np.sqrt(inp) * 0.7 + 0.1, x, k=5)
    assert std.shape == (2, 8, 8)
    assert np.all(std == 0.0)


def test_sample_diversity_matches_per_pixel_std():
    rng = np.random.default_rng(1)
    x = rng.random((2, 6, 5, 3)).astype(np.float32)
    outputs = []

    def noisy(inp):
        y = np.clip(inp + rng.normal(0, 0.1, inp.shape), 0, 1).astype(np.float32)
        outputs.append(y)
        return y

    std = sample_diversity(noisy, x, k=20)
    assert len(outputs) == 20
    stacked = np.stack(outputs)  # [K, B, H, W, C]
    for i in range(2):
        np.testing.assert_allclose(std[i], per_pixel_std(stacked[:, i]), atol=1e-6)
    # [-1, 1] outputs are mapped to [0, 1] first: the std halves.
    replay = iter([o * 2 - 1 for o in outputs])
    std_m11 = sample_diversity(lambda inp: next(replay), x, k=20, value_range="minus1_1")
    np.testing.assert_allclose(std_m11, std, atol=1e-6)


def test_dropout_generator_recipe():
    """The documented pix2pix recipe: frozen BatchNorm + training=True dropout."""
    import keras

    inp = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, padding="same")(inp)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.Dropout(0.5)(h)
    out = keras.layers.Conv2D(3, 1, activation="tanh")(h)
    model = keras.Model(inp, out)
    x = np.random.default_rng(2).uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32)
    moving_mean = model.layers[2].moving_mean.numpy().copy()
    model.trainable = False
    std = sample_diversity(lambda v: model(v, training=True), x, k=6, value_range="minus1_1")
    assert std.mean() > 1e-3
    np.testing.assert_array_equal(model.layers[2].moving_mean.numpy(), moving_mean)  # stats untouched
    assert np.all(sample_diversity(lambda v: model(v, training=False), x, k=3, value_range="minus1_1") == 0)


def test_std_heatmap_png(tmp_path):
    std = per_pixel_std(np.random.default_rng(3).random((4, 32, 48, 3)).astype(np.float32))
    path = save_std_heatmap(std, tmp_path / "sub" / "std.png", vmax=0.5, title="std over 4 samples")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None and img.ndim == 3 and img.shape[0] > 50
    # colour, not grey: the colour map and colour bar use distinct channel values
    assert np.abs(img[..., 0].astype(int) - img[..., 2].astype(int)).max() > 50
    zero = save_std_heatmap(np.zeros((8, 8)), tmp_path / "zero.png")
    assert cv2.imread(str(zero)) is not None
    assert not [p for p in tmp_path.rglob(".tmp-*")]  # atomic write left no temp files


# --------------------------------------------------------------------------- #
# Spectrum
# --------------------------------------------------------------------------- #
def _cosine(size, f, axis="x", channels=3):
    t = np.arange(size)
    wave = 0.5 + 0.4 * np.cos(2 * np.pi * f * t / size)
    img = np.tile(wave[None, :], (size, 1)) if axis == "x" else np.tile(wave[:, None], (1, size))
    return np.repeat(img[None, :, :, None], channels, axis=-1).astype(np.float32)


def test_constant_image_has_zero_spectrum():
    x = np.full((2, 16, 16, 3), 0.7, np.float32)
    spec = power_spectrum(x)
    assert spec.shape == (16, 16)
    np.testing.assert_allclose(spec, 0.0, atol=1e-20)


def test_parseval_and_dc_zero():
    x = np.random.default_rng(4).random((3, 16, 12, 3)).astype(np.float32)
    spec = power_spectrum(x)
    assert spec[8, 6] == pytest.approx(0.0, abs=1e-12)  # DC at (H//2, W//2)
    centred = x.astype(np.float64) - x.mean(axis=(1, 2), keepdims=True)
    assert spec.sum() == pytest.approx(np.mean(np.sum(centred**2, axis=(1, 2))), rel=1e-9)


@pytest.mark.parametrize("f,axis", [(5, "x"), (11, "x"), (7, "y"), (31, "x")])
def test_cosine_energy_at_radius_f(f, axis):
    radii, profile = azimuthal_average(power_spectrum(_cosine(64, f, axis)))
    assert np.array_equal(radii, np.arange(len(profile)))
    assert int(np.argmax(profile)) == f
    # all the energy is in ring f: the other rings are ~0
    others = np.delete(profile, f)
    assert np.all(others < 1e-12 * profile[f])


def test_azimuthal_average_of_radial_function():
    h, w = 33, 40
    yy, xx = np.indices((h, w))
    r = np.hypot(yy - h // 2, xx - w // 2)
    g = lambda k: np.exp(-k / 7.0) + 0.1 * k  # noqa: E731
    radii, profile = azimuthal_average(g(np.floor(r)))  # constant on every ring
    np.testing.assert_allclose(profile, g(radii), rtol=1e-12)
    assert len(radii) == int(np.floor(r.max())) + 1
    # a smooth radial function: ring k averages radii in [k, k+1)
    _, prof_r = azimuthal_average(r)
    assert np.all(prof_r >= radii) and np.all(prof_r < radii + 1)
    assert prof_r[0] == 0.0  # ring 0 holds only the centre
    # explicit centre
    _, prof_c = azimuthal_average(np.hypot(yy - 3, xx - 5), center=(3, 5))
    assert prof_c[0] == 0.0 and np.all(np.diff(prof_c) > 0)


def test_luma_mode():
    grey = np.random.default_rng(5).random((2, 16, 16, 1)).astype(np.float32)
    rgb = np.repeat(grey, 3, axis=-1)
    np.testing.assert_allclose(power_spectrum(rgb, channels="luma"), power_spectrum(rgb), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(power_spectrum(grey), power_spectrum(rgb), rtol=1e-6, atol=1e-12)
    with pytest.raises(ValueError, match="luma"):
        power_spectrum(grey, channels="luma")
    with pytest.raises(TypeError, match="floating-point"):
        power_spectrum((rgb * 255).astype(np.uint8))


def test_streaming_equals_all_at_once():
    rng = np.random.default_rng(6)
    data = rng.random((23, 32, 32, 3)).astype(np.float32)  # 23: not a multiple of the batch or FFT chunk
    whole = azimuthal_average(power_spectrum(data))[1]

    def batches():
        for i in range(0, 23, 5):
            yield data[i : i + 5]

    out = spectrum_of_sets({"streamed": batches(), "one_array": data, "one_batch": [data]})
    assert list(out) == ["streamed", "one_array", "one_batch"]
    for profile in out.values():
        np.testing.assert_allclose(profile, whole, rtol=1e-10)
    # equals the mean of the per-image profiles (linearity)
    per_image = np.mean([azimuthal_average(power_spectrum(data[i : i + 1]))[1] for i in range(23)], axis=0)
    np.testing.assert_allclose(whole, per_image, rtol=1e-10)
    with pytest.raises(ValueError, match="size changed"):
        spectrum_of_sets({"bad": [data[:2], data[:2, :16, :16]]})
    with pytest.raises(ValueError, match="no images"):
        spectrum_of_sets({"empty": []})


def _high_low_ratio(profile, size):
    """Power above half the Nyquist (rings size/4 .. size/2) relative to below."""
    return profile[size // 4 : size // 2 + 1].sum() / profile[1 : size // 4].sum()


def test_blur_removes_high_frequencies_synthetic():
    rng = np.random.default_rng(7)
    sharp = rng.random((4, 64, 64, 3)).astype(np.float32)
    blurred = np.stack([cv2.GaussianBlur(im, (0, 0), 1.5) for im in sharp])
    prof = spectrum_of_sets({"sharp": [sharp], "blurred": [blurred]})
    assert np.all(prof["blurred"][16:32] < 0.1 * prof["sharp"][16:32])
    assert _high_low_ratio(prof["blurred"], 64) < 0.1 * _high_low_ratio(prof["sharp"], 64)


def test_blur_removes_high_frequencies_real_photo(facades_dir):
    path = facades_dir / "1.jpg"
    if not path.is_file():
        pytest.skip(f"real photo absent: {path}")
    combined = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    photo = combined[:, : combined.shape[1] // 2].astype(np.float32) / 255.0  # left half = photo (A)
    n = photo.shape[0]
    blurred = cv2.GaussianBlur(photo, (0, 0), 2.0)
    prof = spectrum_of_sets({"photo": photo[None], "blurred": blurred[None]})
    hi = slice(n // 4, n // 2 + 1)
    # Not ~0: the DFT treats the image as periodic, and the left/right and top/bottom
    # border discontinuities (which blurring keeps) leak power along the axes at all
    # frequencies. Measured on 1.jpg: 0.14.
    assert prof["blurred"][hi].sum() < 0.3 * prof["photo"][hi].sum()
    assert _high_low_ratio(prof["blurred"], n) < _high_low_ratio(prof["photo"], n)
    # natural images: power falls with frequency (roughly 1/f^2)
    assert prof["photo"][2] > 10 * prof["photo"][n // 2]


def test_plot_and_csv(tmp_path):
    rng = np.random.default_rng(8)
    sharp = rng.random((2, 32, 32, 3)).astype(np.float32)
    blurred = np.stack([cv2.GaussianBlur(im, (0, 0), 1.0) for im in sharp])
    profiles = spectrum_of_sets({"ground truth": [sharp], "rec, blurred": [blurred]})

    png = save_spectrum_plot(profiles, tmp_path / "plots" / "spectrum.png", nyquist=16, title="test")
    img = cv2.imread(str(png))
    assert img is not None and img.ndim == 3
    assert cv2.imread(str(save_spectrum_plot(profiles, tmp_path / "lin.png", log=False))) is not None

    csv_path = save_spectrum_numbers(profiles, tmp_path / "nums" / "spectrum.csv")
    with open(csv_path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["frequency", "ground truth", "rec, blurred"]
    assert len(rows) == 1 + len(profiles["ground truth"])
    assert [int(r[0]) for r in rows[1:]] == list(range(len(rows) - 1))
    np.testing.assert_allclose([float(r[1]) for r in rows[1:]], profiles["ground truth"], rtol=1e-9)
    np.testing.assert_allclose([float(r[2]) for r in rows[1:]], profiles["rec, blurred"], rtol=1e-9)

    # sets of different sizes: shorter columns are left empty
    short = save_spectrum_numbers({"a": np.ones(3), "b": np.ones(5)}, tmp_path / "short.csv")
    rows = list(csv.reader(open(short, newline="")))
    assert rows[-1] == ["4", "", "1"]
    assert not [p for p in tmp_path.rglob(".tmp-*")]
