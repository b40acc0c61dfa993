"""Issue 15's good cases that no other test covered (docs/hardening.md lists every case and the test that covers it).

Small and fast on purpose (no training, no export): archive members that escape on Windows only, bad
requests to the serving decoder (and what training refuses, X34-X36), folders without images, `--set` keys that
name nothing. Every file is made here.
"""

from __future__ import annotations

import io
import re
import tarfile
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from tfi2i import config as C

NAME = "facades"


# ----------------------------------------------------------------------------- archives
def _archive(path, evil):
    """``facades/train/1.jpg`` plus a regular member named ``evil``, as a tar.gz."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in ((f"{NAME}/train/1.jpg", b"\xff\xd8 one" * 20), (evil, b"evil")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("evil", [f"{NAME}\\..\\..\\evil.txt", "..\\evil.txt", f"{NAME}/train\\..\\..\\..\\evil.txt"],
                         ids=["backslash-nested", "backslash", "mixed-separators"])
@pytest.mark.parametrize("use_filter", [False, True], ids=["own-checks", "tarfile-filter"])
def test_backslash_path_escapes_are_refused_on_every_os(tmp_path, monkeypatch, evil, use_filter):
    """A name that is harmless on POSIX (one file name with backslashes) escapes when extracted on Windows."""
    from tfi2i.data import download as dl

    if use_filter and not hasattr(tarfile, "data_filter"):
        pytest.skip("tarfile has no extraction filters on this Python")
    monkeypatch.setattr(dl, "_USE_DATA_FILTER", use_filter)
    served = tmp_path / "srv"
    served.mkdir()
    _archive(served / f"{NAME}.tar.gz", evil)
    root = tmp_path / "root"
    with pytest.raises(dl.DownloadError) as err:
        dl.download(NAME, root, base_url=served.as_uri(), progress=False)
    message = str(err.value)
    assert "refusing to extract" in message and "'..' component" in message and "nothing was installed" in message
    assert "\n" not in message and not (root / NAME).exists()
    assert sorted(p.name for p in root.iterdir()) == []  # the rejected archive is deleted, no digest recorded


# ----------------------------------------------------------------------------- serving: bad requests to the decoder
def _png(img):
    return cv2.imencode(".png", img)[1].tobytes()


def _image(h=24, w=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def decoders():
    """The served decoder of an image input and of a 3-class label input, as one traced function each."""
    import tensorflow as tf

    from tfi2i import export

    def served(spec):
        return tf.function(lambda data: export._decode_input(spec, data, 200 * 200),
                           input_signature=[tf.TensorSpec([], tf.string)])

    return {"image": served(SimpleNamespace(name="x", kind="image", channels=3)),
            "labels": served(SimpleNamespace(name="x", kind="labels", channels=3, num_classes=3, ids=False)),
            "instances": served(SimpleNamespace(name="instances", kind="instances", channels=1, ids=False))}


def _jpeg_cut_in_half():
    data = cv2.imencode(".jpg", _image(64, 64))[1].tobytes()
    return data[: len(data) // 2]


BAD_REQUESTS = {
    "empty bytes": ("image", b"", "Input is empty"),
    "jpeg cut in half": ("image", _jpeg_cut_in_half(), "Invalid JPEG data"),
    "only a png signature": ("image", b"\x89PNG\r\n\x1a\n", "Invalid PNG"),
    "labels as a jpeg": ("labels", cv2.imencode(".jpg", _image())[1].tobytes(), "must be a 1-channel PNG of ids"),
    "label id out of range": ("labels", _png(np.full((8, 8), 7, np.uint8)), "label id out of range"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_served_decoder_refuses_bad_bytes_and_keeps_answering(decoders, case):
    import tensorflow as tf

    kind, data, message = BAD_REQUESTS[case]
    with pytest.raises(tf.errors.InvalidArgumentError) as err:
        decoders[kind](tf.constant(data))
    assert message in err.value.message, (case, err.value.message[:400])
    x = decoders["image"](tf.constant(_png(_image())))  # the same traced function, the next request
    assert x.shape == (1, 24, 32, 3) and -1 <= float(tf.reduce_min(x)) <= float(tf.reduce_max(x)) <= 1
    ids = decoders["labels"](tf.constant(_png(np.full((4, 5), 2, np.uint8))))
    assert ids.shape == (1, 4, 5, 3) and float(tf.reduce_sum(ids[..., 2])) == 20  # one-hot of id 2


# ----------------------------------------------------------------------------- serving: what training refuses
def _textured(h=96, w=128, seed=0):
    """A JPEG-unfriendly texture (gradients plus noise), BGR uint8."""
    y, x = np.mgrid[:h, :w]
    img = np.stack([x % 256, y % 256, (x + y) // 2 % 256], -1) + np.random.default_rng(seed).normal(0, 20, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _jpeg(img, progressive=0):
    params = [cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_PROGRESSIVE, progressive]
    return cv2.imencode(".jpg", img, params)[1].tobytes()


def _early_eoi(data, keep=0.14):
    """A baseline JPEG's scan cut after ``keep`` of its bytes, then an end-of-image marker (decoded grey-filled)."""
    sos = data.find(b"\xff\xda")
    start = sos + 2 + int.from_bytes(data[sos + 2: sos + 4], "big")
    return data[: start + int((len(data) - start) * keep)].rstrip(b"\xff") + b"\xff\xd9"


def _cut_after_first_scan(data):
    """A progressive JPEG with only its first scan, then an end-of-image marker (decoded blurred, no error)."""
    scans = [i for i in range(len(data) - 1) if data[i: i + 2] == b"\xff\xda"]
    assert len(scans) > 2
    return data[: scans[1]] + b"\xff\xd9"


_GREY = np.random.default_rng(1).integers(0, 3, (8, 8), dtype=np.uint8)
TRAINING_REFUSES = {  # case: (decoder, bytes, what the served message says, what training's message says)
    "early-eoi-jpeg": ("image", _early_eoi(_jpeg(_textured())), "corrupt JPEG: the image data ends before the last "
                       "pixel", "ends before the last pixel"),
    "progressive-jpeg-cut-after-a-scan": ("image", _cut_after_first_scan(_jpeg(_textured(), progressive=1)),
                                          "corrupt JPEG: a progressive JPEG whose scans stop early",
                                          "a progressive JPEG whose scans stop early"),
    "rgb-png-as-labels": ("labels", _png(np.stack([_GREY, 2 - _GREY, _GREY // 2], -1)),
                          "this PNG has 3 channel(s) at bit depth 8", "this one has 3 channel(s) at bit depth 8"),
    "grey-saved-as-rgb-png-as-labels": ("labels", _png(np.repeat(_GREY[..., None], 3, -1)),
                                        "this PNG has 3 channel(s) at bit depth 8",
                                        "this one has 3 channel(s) at bit depth 8"),
    "rgb-png-as-instances": ("instances", _png(np.stack([_GREY, 2 - _GREY, _GREY], -1)),
                             "this PNG has 3 channel(s) at bit depth 8", "this one has 3 channel(s) at bit depth 8"),
}


@pytest.mark.parametrize("case", sorted(TRAINING_REFUSES))
def test_served_decoder_refuses_what_training_refuses(decoders, tmp_path, case):
    """X34-X36: early-ended JPEGs and colour PNGs as id maps are InvalidArgument in serving, as in training.

    An RGB label PNG is refused even when its three channels are equal (a grey map saved as RGB): training's
    ``read_ids`` and ``decode_ids_tf`` refuse it too (colour type 2), so the server does not convert it.
    """
    import tensorflow as tf

    from tfi2i.data.images import DataError, decode_ids_tf, read_ids, read_image

    kind, data, served, trained = TRAINING_REFUSES[case]
    with pytest.raises(tf.errors.InvalidArgumentError) as err:
        decoders[kind](tf.constant(data))
    message = err.value.message
    where = "input instances" if kind == "instances" else "input x"
    assert served in message and where in message, (case, message[:600])
    if kind != "image":
        assert f"tfi2i: {where} ({kind}) must be a 1-channel PNG of ids (greyscale, 8 or 16 bit)" in message
        assert "must be converted to ids first" in message
    # training refuses the same bytes, up front and in tf.data
    path = tmp_path / ("bad.jpg" if kind == "image" else "bad.png")
    path.write_bytes(data)
    with pytest.raises(DataError, match=re.escape(trained)):
        read_image(path) if kind == "image" else read_ids(path)
    if kind != "image":
        with pytest.raises(tf.errors.InvalidArgumentError, match="must be a 1-channel 8- or 16-bit PNG"):
            decode_ids_tf(str(path))
    # the same traced functions answer the next requests
    assert decoders["image"](tf.constant(_png(_image()))).shape == (1, 24, 32, 3)
    ids = decoders["labels"](tf.constant(_png(_GREY)))
    np.testing.assert_array_equal(tf.argmax(ids[0], -1).numpy(), _GREY)


def test_served_decoder_still_decodes_valid_files_as_before(decoders):
    """Good PNGs and JPEGs (baseline, progressive, a genuine mid-grey corner; 8- and 16-bit id maps) decode as they
    did before the checks of X34-X36: the same pixels as the plain decoders."""
    import tensorflow as tf

    grey_corner = _textured(64, 80)
    grey_corner[24:] = 128  # the trap decode runs, and agrees
    for name, data in {"png": _png(_textured()), "baseline jpeg": _jpeg(_textured()),
                       "progressive jpeg": _jpeg(_textured(), progressive=1),
                       "jpeg ending in mid-grey": _jpeg(grey_corner),
                       "progressive jpeg ending in mid-grey": _jpeg(grey_corner, progressive=1)}.items():
        if name == "png":
            want = tf.io.decode_png(data, channels=3)
        else:
            want = tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")
        got = decoders["image"](tf.constant(data)).numpy()
        assert got.shape == (1, *want.shape) and -1 <= got.min() <= got.max() <= 1, name
        np.testing.assert_array_equal(np.round((got[0] + 1.0) * 127.5).astype(np.uint8), want.numpy(), name)
    for ids in (_GREY, _GREY.astype(np.uint16)):  # 8- and 16-bit greyscale id maps
        got = decoders["labels"](tf.constant(_png(ids)))
        np.testing.assert_array_equal(got.numpy(), np.eye(3, dtype=np.float32)[ids][None])


# ----------------------------------------------------------------------------- folders without images
def test_folder_of_hidden_and_non_image_files_is_empty(tmp_path):
    from tfi2i.data.images import DataError
    from tfi2i.data.sources import SideBySide, TwoFolders

    folder = tmp_path / "pairs"
    folder.mkdir()
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "._1.jpg").write_bytes(b"\0\5\26\7")  # macOS resource fork with an image extension
    (folder / "README.txt").write_text("the images are elsewhere")
    with pytest.raises(DataError, match=r"pairs: no image files \(.*\) in this folder$"):
        SideBySide(folder)
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    (tmp_path / "A" / "1.png").write_bytes(_png(_image(4, 4)))
    (tmp_path / "B" / ".1.png").write_bytes(_png(_image(4, 4)))  # hidden: not a pair
    with pytest.raises(DataError, match=r"B: no image files"):
        TwoFolders(tmp_path / "A", tmp_path / "B")


def test_folder_of_sub_folders_says_where_the_images_are(tmp_path):
    from tfi2i.data.images import DataError
    from tfi2i.data.sources import SideBySide

    for sub in ("photos", "labels"):
        (tmp_path / "set" / sub).mkdir(parents=True)
        (tmp_path / "set" / sub / "1.png").write_bytes(_png(_image(4, 8)))
    with pytest.raises(DataError, match=r"set: no image files .*it holds sub-folders \(labels, photos\); point to the "
                                        r"folder with the images"):
        SideBySide(tmp_path / "set")


# ----------------------------------------------------------------------------- bad --set keys
@pytest.mark.parametrize("item, message", [
    ("bogus.x=1", r"unknown config key 'bogus.x': 'bogus' is not one of \[.*'optim'.*\]"),
    ("optim.lr.x=1", r"unknown config key 'optim.lr.x'"),
    ("loss.weights.l1.x=1", r"unknown config key 'loss.weights.l1.x'"),
    ("=1", r"unknown config key '': '' is not one of"),
    ("data.crop_size=1,2,3", r"--set data.crop_size=1,2,3: expected an int \(a square size\) or HEIGHT,WIDTH"),
    ("data.crop_size=big", r"--set data.crop_size=big: expected an int"),
    ("optim.lr=", r"--set optim.lr=: expected a value of type float"),
], ids=["unknown-section", "below-a-number", "below-a-weight", "empty-key", "three-sizes", "word-size", "empty-value"])
def test_set_keys_and_values_that_name_nothing_are_refused(item, message):
    cfg = C.Config(loss=C.LossConfig(weights={"l1": 100.0}))
    with pytest.raises(C.ConfigError, match=message):
        C.override(cfg, [item])


def test_set_with_spaces_around_key_and_value_is_read():
    assert C.override(C.Config(), [" optim.lr = 1e-4 "]).optim.lr == 1e-4
