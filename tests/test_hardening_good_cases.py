"""Issue 15's good cases that no other test covered (docs/hardening.md lists every case and the test that covers it).

Small and fast on purpose (no training, no export): archive members that escape on Windows only, bad
requests to the serving decoder, folders without images, `--set` keys that name nothing. Every file is made
here.
"""

from __future__ import annotations

import io
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
            "labels": served(SimpleNamespace(name="x", kind="labels", channels=3, num_classes=3, ids=False))}


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
