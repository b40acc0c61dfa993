"""FCN score: confusion matrix by hand, pix2pix's get_scores, a perfect segmenter, colour decoding."""

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from tfi2i.metrics.cityscapes import (
    CLASS_NAMES,
    IGNORE,
    LABEL_COLORS,
    LABEL_TO_TRAIN,
    LABELS,
    NUM_CLASSES,
    PALETTE_COLORS,
    PALETTE_IDS,
    TRAIN_COLORS,
    colors_to_label_ids,
    colors_to_label_ids_tf,
    colors_to_train_ids,
    label_ids_to_colors,
    label_ids_to_train_ids,
)
from tfi2i.metrics.fcn import (
    ConfusionMatrix,
    Segmenter,
    SegmenterError,
    fcn_confusion,
    fcn_score,
    load_segmenter,
)
from tests.helpers import shared_data_dir

REPO_ROOT = Path(__file__).resolve().parents[2]




# --------------------------------------------------------------------------- pix2pix reference


def ref_fast_hist(a, b, n):  # scripts/eval_cityscapes/util.py of pix2pix
    k = np.where((a >= 0) & (a < n))[0]
    bc = np.bincount(n * a[k].astype(int) + b[k], minlength=n ** 2)
    return bc.reshape(n, n)


def ref_get_scores(hist):
    acc = np.diag(hist).sum() / (hist.sum() + 1e-12)
    cl_acc = np.diag(hist) / (hist.sum(1) + 1e-12)
    iu = np.diag(hist) / (hist.sum(1) + hist.sum(0) - np.diag(hist) + 1e-12)
    return acc, np.nanmean(cl_acc), np.nanmean(iu)


# --------------------------------------------------------------------------- confusion matrix


def test_hand_computed_3_classes_with_ignore():
    gt = np.array([[0, 0, 1], [1, 2, 255]], np.uint8)
    pred = np.array([[0, 1, 1], [1, 2, 0]], np.uint8)
    cm = ConfusionMatrix(3).update(pred, gt)
    np.testing.assert_array_equal(cm.matrix, [[1, 1, 0], [0, 2, 0], [0, 0, 1]])
    s = cm.scores()
    assert s["per_pixel_acc"] == pytest.approx(4 / 5)
    assert s["per_class_acc"] == pytest.approx((1 / 2 + 2 / 2 + 1 / 1) / 3)
    assert s["class_iou"] == pytest.approx((1 / 2 + 2 / 3 + 1 / 1) / 3)
    assert set(s) == {"per_pixel_acc", "per_class_acc", "class_iou"}


def test_absent_class_counts_zero_like_pix2pix():
    # class 3 is neither in gt nor predicted, class 2 is predicted but not in gt
    gt = np.array([0, 0, 1, 1, 1, 255])
    pred = np.array([0, 2, 1, 1, 0, 3])  # the 3 sits on an ignored pixel
    cm = ConfusionMatrix(4).update(pred, gt)
    s = cm.scores()
    ref = ref_get_scores(ref_fast_hist(gt, pred, 4))
    assert (s["per_pixel_acc"], s["per_class_acc"], s["class_iou"]) == pytest.approx(ref, rel=1e-9)
    assert s["per_class_acc"] == pytest.approx((1 / 2 + 2 / 3 + 0 + 0) / 4)  # absent classes count 0
    assert s["class_iou"] == pytest.approx((1 / 3 + 2 / 3 + 0 + 0) / 4)
    present = cm.scores(skip_absent=True)
    assert present["per_class_acc"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert present["class_iou"] == pytest.approx((1 / 3 + 2 / 3) / 2)
    assert ConfusionMatrix(4).scores() == {"per_pixel_acc": 0.0, "per_class_acc": 0.0, "class_iou": 0.0}


def test_matches_pix2pix_on_random_images():
    rng = np.random.default_rng(0)
    cm, hist = ConfusionMatrix(), np.zeros((19, 19))
    for _ in range(5):
        gt = rng.integers(0, 19, (2, 17, 23)).astype(np.uint8)
        gt[rng.random(gt.shape) < 0.2] = 255
        pred = np.where(rng.random(gt.shape) < 0.6, gt % 19, rng.integers(0, 19, gt.shape)).astype(np.uint8)
        cm.update(pred, gt[None])  # shapes may differ, element counts may not
        hist += ref_fast_hist(gt.flatten(), pred.flatten(), 19)
    np.testing.assert_array_equal(cm.matrix, hist)
    s = cm.scores()
    assert (s["per_pixel_acc"], s["per_class_acc"], s["class_iou"]) == pytest.approx(ref_get_scores(hist), rel=1e-9)
    other = ConfusionMatrix().merge(cm).merge(cm)
    np.testing.assert_array_equal(other.matrix, 2 * cm.matrix)


def test_update_rejects_bad_input():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="pixels"):
        cm.update(np.zeros(4, np.uint8), np.zeros(5, np.uint8))
    with pytest.raises(ValueError, match="0..2"):
        cm.update(np.array([3]), np.array([1]))
    cm.update(np.array([7, 0]), np.array([255, -1]))  # out-of-range predictions on ignored pixels are fine
    assert cm.total == 0
    with pytest.raises(ValueError, match="integers"):
        cm.update(np.zeros(2, np.float32), np.zeros(2, np.uint8))


# --------------------------------------------------------------------------- label table and colours


def test_label_table():
    assert [lab.id for lab in LABELS] == list(range(34))
    assert len(CLASS_NAMES) == NUM_CLASSES == 19
    assert CLASS_NAMES[:3] == ("road", "sidewalk", "building") and CLASS_NAMES[-1] == "bicycle"
    assert sorted(t for t in LABEL_TO_TRAIN[:34] if t != 255) == list(range(19))
    assert (LABEL_TO_TRAIN[34:] == 255).all()
    by_name = {lab.name: lab for lab in LABELS}
    assert by_name["road"].color == (128, 64, 128) and by_name["road"].train_id == 0
    assert by_name["sidewalk"].color == (244, 35, 232)
    assert by_name["building"].color == (70, 70, 70)
    assert by_name["car"].color == (0, 0, 142) and by_name["car"].train_id == 13
    assert tuple(TRAIN_COLORS[10]) == (70, 130, 180)  # sky
    np.testing.assert_array_equal(label_ids_to_train_ids(np.array([7, 26, 0, -1, 300])), [0, 13, 255, 255, 255])
    assert label_ids_to_train_ids(np.array([[7]], np.uint8)).dtype == np.uint8


def test_palette_round_trip():
    ids = np.arange(34, dtype=np.uint8).reshape(2, 17)
    back = colors_to_label_ids(label_ids_to_colors(ids))
    expected = ids.copy()
    expected[np.isin(ids, [1, 2, 3, 4])] = 0  # all void black -> 0 unlabeled
    expected[ids == 18] = 17  # polegroup shares pole's grey -> 17 pole
    np.testing.assert_array_equal(back, expected)
    assert back.dtype == np.uint8 and back.shape == (2, 17)
    assert len(PALETTE_IDS) == len(PALETTE_COLORS) == 29
    np.testing.assert_array_equal(LABEL_TO_TRAIN[back], LABEL_TO_TRAIN[expected])
    # train ids survive exactly except polegroup (ignored) -> pole
    t = label_ids_to_train_ids(ids)
    t[ids == 18] = 5
    np.testing.assert_array_equal(colors_to_train_ids(label_ids_to_colors(ids)), t)


def test_nearest_colour_and_tf_agree():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (64, 96, 3)).astype(np.uint8)
    # plus exact ties: midpoints of two palette colours equally near both
    ties = []
    pal = PALETTE_COLORS
    for i in range(len(pal)):
        for j in range(i + 1, len(pal)):
            if ((pal[i] + pal[j]) % 2 == 0).all():
                m = (pal[i] + pal[j]) // 2
                d = ((pal - m) ** 2).sum(1)
                if d[i] == d[j] == d.min():
                    ties.append((m, PALETTE_IDS[i]))
    assert ties, "the palette has exactly equidistant midpoints"
    rgb[0, : len(ties)] = [m for m, _ in ties]
    ids = colors_to_label_ids(rgb)
    np.testing.assert_array_equal(ids[0, : len(ties)], [i for _, i in ties])  # ties -> lower labelId
    np.testing.assert_array_equal(colors_to_label_ids_tf(rgb).numpy(), ids)
    brute = PALETTE_IDS[np.argmin(((rgb[..., None, :].astype(int) - pal) ** 2).sum(-1), -1)]
    np.testing.assert_array_equal(ids, brute)


def _block_label_ids(h, w, block, seed):
    rng = np.random.default_rng(seed)
    ids = rng.choice([lab.id for lab in LABELS if lab.id not in (1, 2, 3, 4, 18)], ((h + block - 1) // block,
                                                                                     (w + block - 1) // block))
    return np.kron(ids, np.ones((block, block), np.int64))[:h, :w].astype(np.uint8)


@pytest.mark.parametrize("quality,block", [(95, 64), (75, 20)])
def test_jpeg_colour_maps_decode(quality, block):
    # The pix2pix release's label JPEGs are 4:2:0 at about quality 95 (OpenCV's default sampling is 4:2:0).
    # Blocks are not aligned with JPEG's 8x8 / 16x16 grid; neighbours are random, so boundaries are harsh.
    ids = _block_label_ids(256, 256, block, seed=quality)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(label_ids_to_colors(ids), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    jpeg = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.abs(jpeg.astype(int) - label_ids_to_colors(ids)).max() > 5  # really lossy
    good = colors_to_label_ids(jpeg) == ids
    yy, xx = np.mgrid[:256, :256]
    interior = ((yy % block) >= 3) & ((yy % block) < block - 3) & ((xx % block) >= 3) & ((xx % block) < block - 3)
    assert good[interior].mean() > 0.99, good[interior].mean()  # errors only where colours blend at boundaries
    if block == 64:  # street-scene-sized regions at the release's quality
        assert good.mean() > 0.99, good.mean()


def test_real_cityscapes_colour_map():
    from tfi2i.data.images import read_image

    path = shared_data_dir() / "cityscapes_train300" / "1.jpg"
    if not path.is_file():
        pytest.skip(f"real data absent: {path} (set TFI2I_SHARED_DATA)")
    img = read_image(path)
    colours = img[:, img.shape[1] // 2:]
    ids = colors_to_label_ids(colours)
    common = np.isin(ids, [7, 11, 26, 21, 23])  # road, building, car, vegetation, sky
    assert common.mean() > 0.6, np.bincount(ids.ravel(), minlength=34)
    # the JPEG colours are near palette colours for most pixels
    dist = np.sqrt(((colours.astype(int) - LABEL_COLORS[ids]) ** 2).sum(-1))
    assert np.median(dist) < 10
    train = label_ids_to_train_ids(ids)
    assert (train != IGNORE).mean() > 0.8


# --------------------------------------------------------------------------- segmenter


TRAIN_PALETTE = TRAIN_COLORS[:NUM_CLASSES].astype(np.float64)


def nearest_train_colour_logits(x):
    """-||x - colour_c||^2 per train class: a perfect segmenter for photos that ARE colour maps."""
    x = np.asarray(x, np.float64)
    return -((x[..., None, :] - TRAIN_PALETTE) ** 2).sum(-1).astype(np.float32)


def _synthetic(n, h, w, seed=0):
    """Colour label maps holding every train class, plus void pixels; photo == colour map."""
    rng = np.random.default_rng(seed)
    photos, labels = [], []
    for _ in range(n):
        t = rng.integers(0, NUM_CLASSES, (h, w)).astype(np.uint8)
        t.reshape(-1)[:NUM_CLASSES] = np.arange(NUM_CLASSES)
        colour = TRAIN_COLORS[t]
        void = rng.random((h, w)) < 0.1
        colour[void] = (81, 0, 81)  # 'ground': a void colour, trainId 255
        photos.append(colour)
        labels.append(np.where(void, 255, t).astype(np.uint8))
    return photos, labels


def test_perfect_callable_segmenter_scores_one():
    photos, labels = _synthetic(3, 40, 56)  # not multiples of 32: padded and cropped
    seg = Segmenter(nearest_train_colour_logits)
    for p, lab in zip(photos, labels):
        pred = seg(p)
        assert pred.shape == lab.shape and pred.dtype == np.uint8
        np.testing.assert_array_equal(pred[lab != 255], lab[lab != 255])
    assert fcn_score(seg, photos, labels) == {"per_pixel_acc": 1.0, "per_class_acc": 1.0, "class_iou": 1.0}
    # colour label maps are decoded the same way as trainId maps
    assert fcn_score(seg, photos, photos, batch_size=2) == fcn_score(seg, photos, labels, batch_size=1)
    cm = fcn_confusion(seg, photos, labels)
    assert cm.total == sum(int((lab != 255).sum()) for lab in labels)
    # the [0, 1] convention
    seg01 = Segmenter(lambda x: nearest_train_colour_logits(np.asarray(x) * 255.0), input_scale=1.0)
    assert fcn_score(seg01, photos, labels)["class_iou"] == 1.0


def _perfect_keras_model():
    import keras

    # argmin ||x - c||^2 == argmax (2 x.c - ||c||^2): one 1x1 convolution
    inp = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(NUM_CLASSES, 1, name="nearest_colour")
    model = keras.Model(inp, conv(inp))
    conv.set_weights([(2 * TRAIN_PALETTE.T)[None, None].astype(np.float32),
                      -(TRAIN_PALETTE ** 2).sum(1).astype(np.float32)])
    return model


def test_perfect_keras_segmenter_saved_and_loaded(tmp_path):
    photos, labels = _synthetic(2, 64, 96, seed=3)
    model = _perfect_keras_model()
    perfect = {"per_pixel_acc": 1.0, "per_class_acc": 1.0, "class_iou": 1.0}
    assert fcn_score(Segmenter(model), photos, labels) == perfect
    model.save(tmp_path / "seg.keras")
    assert fcn_score(load_segmenter(tmp_path / "seg.keras"), photos, labels) == perfect
    model.export(tmp_path / "seg_savedmodel", verbose=False)
    assert fcn_score(load_segmenter(tmp_path / "seg_savedmodel"), photos, labels) == perfect


def test_segmenter_resizes_scores_to_label_size():
    photos, _ = _synthetic(1, 32, 32)
    seg = Segmenter(nearest_train_colour_logits)
    assert seg(photos[0], label_size=(64, 48)).shape == (64, 48)
    assert seg(np.stack(photos * 2)).shape == (2, 32, 32)
    # scores at a lower resolution than the input are upsampled
    coarse = Segmenter(lambda x: nearest_train_colour_logits(np.asarray(x)[:, ::4, ::4]))
    assert coarse(photos[0]).shape == (32, 32)
    big = TRAIN_COLORS[np.kron(np.arange(16).reshape(4, 4), np.ones((16, 16), np.int64))]  # 64x64, 16 px regions
    lab = colors_to_train_ids(big)
    resized = Segmenter(nearest_train_colour_logits, input_size=(32, 32))  # run at 32x32, scores back to 64x64
    assert (resized(big) == lab).mean() > 0.9


def test_segmenter_errors(tmp_path):
    seg = Segmenter(lambda x: np.zeros(x.shape[:3] + (5,), np.float32))
    with pytest.raises(SegmenterError, match="19"):
        seg(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(SegmenterError, match="number"):
        fcn_score(Segmenter(nearest_train_colour_logits), [np.zeros((8, 8, 3), np.uint8)] * 2,
                  [np.zeros((8, 8), np.uint8)])
    with pytest.raises(SegmenterError, match="not found"):
        load_segmenter(tmp_path / "missing.keras")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SegmenterError, match="saved_model.pb"):
        load_segmenter(tmp_path / "empty")
    (tmp_path / "m.txt").write_text("x")
    with pytest.raises(SegmenterError, match="format"):
        load_segmenter(tmp_path / "m.txt")
    (tmp_path / "bad.keras").write_bytes(b"not a zip")
    with pytest.raises(SegmenterError, match="cannot load"):
        load_segmenter(tmp_path / "bad.keras")
