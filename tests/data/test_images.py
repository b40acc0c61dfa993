"""Tests for tfi2i.data.images: the read_image / decode_image_tf policy and errors."""

from __future__ import annotations

import logging
import struct
import zlib

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfi2i.data import images
from tfi2i.data.images import DataError, decode_image_tf, read_image


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    """Each test starts as if no conversion warning had been logged in this process."""
    monkeypatch.setattr(images, "_WARNED_KINDS", set())


def write_png_raw(path, arr: np.ndarray, color_type: int) -> None:
    """Minimal PNG writer (cv2 cannot write grey+alpha). arr: [H, W, C] uint8/uint16."""
    h, w = arr.shape[:2]
    bitdepth = 16 if arr.dtype == np.uint16 else 8
    rows = arr.astype(">u2" if bitdepth == 16 else "u1").reshape(h, -1)
    raw = b"".join(b"\x00" + rows[i].tobytes() for i in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, bitdepth, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


def rng_img(shape, dtype=np.uint8, seed=0):
    hi = 65536 if dtype == np.uint16 else 256
    return np.random.default_rng(seed).integers(0, hi, shape, dtype=dtype)


def smooth_bgr(h=32, w=48, seed=0):
    """Smooth image (JPEG-friendly) uint8 [h, w, 3]."""
    return cv2.GaussianBlur(rng_img((h, w, 3), seed=seed), (7, 7), 2)


def tf_decode(path) -> np.ndarray:
    return decode_image_tf(str(path)).numpy()


def count(caplog, word):
    return sum(word in r.getMessage() for r in caplog.records if r.name == "tfi2i.data")


# ----------------------------------------------------------------------------- 8-bit colour


@pytest.mark.parametrize("ext", [".png", ".bmp", ".webp"])
def test_lossless_colour_exact(tmp_path, ext, caplog):
    bgr = rng_img((17, 23, 3))
    p = tmp_path / f"img{ext}"
    params = [cv2.IMWRITE_WEBP_QUALITY, 101] if ext == ".webp" else []
    assert cv2.imwrite(str(p), bgr, params)
    with caplog.at_level(logging.WARNING, logger="tfi2i.data"):
        out = read_image(p)
    assert out.dtype == np.uint8 and out.shape == (17, 23, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, bgr[:, :, ::-1])  # BGR -> RGB
    np.testing.assert_array_equal(tf_decode(p), out)
    assert not caplog.records  # nothing converted, nothing logged


def test_jpeg_tf_matches_cv2(tmp_path):
    p = tmp_path / "img.jpg"
    cv2.imwrite(str(p), smooth_bgr())
    a, b = read_image(p), tf_decode(p)
    assert a.shape == b.shape == (32, 48, 3)
    # Different JPEG decoders (IDCT variant, chroma upsampling) may differ by a few
    # levels; decode_image_tf uses the accurate integer IDCT like OpenCV, which is
    # bit-exact with the libjpeg-turbo builds we ship, but only a small gap is promised.
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 3


# ----------------------------------------------------------------------------- conversions


def test_grayscale_replicated_and_warned_once(tmp_path, caplog):
    g = rng_img((9, 11))
    paths = [tmp_path / "g.png", tmp_path / "g2.png", tmp_path / "g.jpg"]
    cv2.imwrite(str(paths[0]), g)
    cv2.imwrite(str(paths[1]), g)
    cv2.imwrite(str(paths[2]), cv2.GaussianBlur(g, (5, 5), 2))
    with caplog.at_level(logging.WARNING, logger="tfi2i.data"):
        out = read_image(paths[0])
        read_image(paths[1])
        read_image(paths[2])
    np.testing.assert_array_equal(out, np.repeat(g[:, :, None], 3, axis=2))
    assert count(caplog, "grayscale") == 1
    assert "g.png" in caplog.records[0].getMessage()
    np.testing.assert_array_equal(tf_decode(paths[0]), out)
    jt, jc = tf_decode(paths[2]), read_image(paths[2])
    assert jt.shape == (9, 11, 3) and np.abs(jt.astype(int) - jc).max() <= 3


def test_rgba_alpha_dropped_and_warned_once(tmp_path, caplog):
    bgra = rng_img((6, 7, 4))
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), bgra)
    with caplog.at_level(logging.WARNING, logger="tfi2i.data"):
        out = read_image(tmp_path / "a.png")
        read_image(tmp_path / "b.png")
    np.testing.assert_array_equal(out, bgra[:, :, 2::-1])  # no compositing: colour kept as is
    assert count(caplog, "alpha channel dropped") == 1
    np.testing.assert_array_equal(tf_decode(tmp_path / "a.png"), out)


def test_gray_alpha_png(tmp_path, caplog):
    ga = rng_img((5, 8, 2))
    p = tmp_path / "ga.png"
    write_png_raw(p, ga, color_type=4)
    with caplog.at_level(logging.WARNING, logger="tfi2i.data"):
        out = read_image(p)
    np.testing.assert_array_equal(out, np.repeat(ga[:, :, :1], 3, axis=2))
    assert count(caplog, "alpha") == 1
    np.testing.assert_array_equal(tf_decode(p), out)


def test_16bit_png_rounded_and_warned_once(tmp_path, caplog):
    bgr16 = rng_img((8, 9, 3), np.uint16)
    edge = [0, 128, 129, 385, 386, 32767, 65407, 65408, 65535]
    bgr16.reshape(-1)[: len(edge)] = edge
    p1, p2 = tmp_path / "c16.png", tmp_path / "g16.png"
    cv2.imwrite(str(p1), bgr16)
    cv2.imwrite(str(p2), bgr16[:, :, 0])
    with caplog.at_level(logging.WARNING, logger="tfi2i.data"):
        out = read_image(p1)
        gray = read_image(p2)
    want = np.round(bgr16[:, :, ::-1] / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(gray, np.repeat(want[:, :, 2:3], 3, axis=2))
    assert count(caplog, "16-bit") == 1
    for p, ref in ((p1, out), (p2, gray)):
        got = tf_decode(p)
        assert got.dtype == np.uint8 and got.shape == ref.shape
        assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1  # promised; exact in practice


def test_16bit_gray_alpha_png(tmp_path):
    ga = rng_img((4, 6, 2), np.uint16)
    p = tmp_path / "ga16.png"
    write_png_raw(p, ga, color_type=4)
    want = np.repeat(np.round(ga[:, :, :1] / 257.0).astype(np.uint8), 3, axis=2)
    np.testing.assert_array_equal(read_image(p), want)
    assert np.abs(tf_decode(p).astype(int) - want).max() <= 1


def test_decode_image_tf_in_dataset(tmp_path):
    files = []
    for i, arr in enumerate([rng_img((5, 6, 3)), rng_img((7, 4)), rng_img((3, 3, 4)),
                             rng_img((4, 4, 3), np.uint16)]):
        p = tmp_path / f"{i}.png"
        cv2.imwrite(str(p), arr)
        files.append(str(p))
    ds = tf.data.Dataset.from_tensor_slices(files).map(decode_image_tf)
    assert ds.element_spec.shape.as_list() == [None, None, 3]
    for f, img in zip(files, ds):
        np.testing.assert_array_equal(img.numpy(), read_image(f))


# ----------------------------------------------------------------------------- errors


def assert_data_error(path, *words):
    with pytest.raises(DataError) as ei:
        read_image(path)
    msg = str(ei.value)
    assert path.name in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


def test_missing_file(tmp_path):
    assert_data_error(tmp_path / "nope.png", "not found")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    assert_data_error(p, "empty")


def test_folder_is_not_an_image(tmp_path):
    (tmp_path / "dir.png").mkdir()
    assert_data_error(tmp_path / "dir.png", "folder")


def test_truncated_png(tmp_path):
    p = tmp_path / "trunc.png"
    ok, buf = cv2.imencode(".png", rng_img((64, 64, 3)))
    p.write_bytes(buf.tobytes()[: len(buf) // 2])
    assert_data_error(p, "truncated")


def test_truncated_jpeg(tmp_path):
    p = tmp_path / "trunc.jpg"
    ok, buf = cv2.imencode(".jpg", smooth_bgr(64, 64))
    p.write_bytes(buf.tobytes()[: int(len(buf) * 0.7)])
    assert_data_error(p, "truncated")


def test_jpeg_completeness_check():
    buf = cv2.imencode(".jpg", smooth_bgr(64, 64))[1].tobytes()
    prog = cv2.imencode(".jpg", smooth_bgr(64, 64), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    assert images._jpeg_is_complete(buf)
    assert images._jpeg_is_complete(prog)
    assert images._jpeg_is_complete(buf + b"trailing junk")
    assert not images._jpeg_is_complete(buf[:-2])
    assert not images._jpeg_is_complete(prog[: len(prog) // 2])


def test_corrupt_bytes(tmp_path):
    p = tmp_path / "corrupt.png"
    ok, buf = cv2.imencode(".png", rng_img((16, 16, 3)))
    b = bytearray(buf.tobytes())
    b[40:] = rng_img(len(b) - 40).tobytes()  # keep the signature and IHDR, garble the rest
    p.write_bytes(bytes(b))
    assert_data_error(p, "corrupt")


def test_non_image_file(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("these are not pixels\n")
    assert_data_error(p, "not a readable image")


def test_float_image(tmp_path):
    p = tmp_path / "float.tiff"
    assert cv2.imwrite(str(p), np.random.default_rng(0).random((4, 5, 3)).astype(np.float32))
    assert_data_error(p, "floating-point")


def test_format_tf_cannot_decode(tmp_path):
    p = tmp_path / "really_a_tiff.png"  # the content decides, not the extension
    ok, buf = cv2.imencode(".tiff", rng_img((4, 5, 3)))
    p.write_bytes(buf.tobytes())
    assert_data_error(p, "TIFF", "convert it to PNG")
    with pytest.raises(tf.errors.InvalidArgumentError, match="really_a_tiff.png"):
        decode_image_tf(str(p))


def test_too_many_channels(tmp_path, monkeypatch):
    p = tmp_path / "five.png"
    cv2.imwrite(str(p), rng_img((4, 4, 3)))
    monkeypatch.setattr(images.cv2, "imdecode", lambda buf, flags: np.zeros((4, 4, 5), np.uint8))
    assert_data_error(p, "5 channels")
