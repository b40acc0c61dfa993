"""Hardening of image reading (issue 15, "Data that lies about itself"): corrupt JPEGs that only
TensorFlow rejects, JPEGs whose scan ends early (baseline: grey-filled; progressive: scans missing),
decompression bombs (one pixel limit read from the header before decoding, at every entry point), bad
files with ``validate=False`` and EXIF orientation. Every file is made by the test itself (tiny crafted
headers for the bombs)."""

from __future__ import annotations

import io
import logging
import re
import struct
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfi2i.data import images
from tfi2i.data.images import DataError, decode_image_tf, read_image
from tfi2i.data.sources import TwoFolders

FACADES = Path(__file__).resolve().parents[3] / "shared" / "data" / "facades_train"


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    """No conversion warning logged yet, and the default pixel limit."""
    monkeypatch.setattr(images, "_WARNED_KINDS", set())
    monkeypatch.delenv("TFI2I_MAX_PIXELS", raising=False)


# ----------------------------------------------------------------------------- file makers


def textured(h=256, w=256, seed=0) -> np.ndarray:
    """A JPEG-unfriendly texture (gradients plus noise), BGR uint8."""
    y, x = np.mgrid[:h, :w]
    img = np.stack([x % 256, y % 256, (x + y) // 2 % 256], -1) + np.random.default_rng(seed).normal(0, 20, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def jpeg(img, params=()) -> bytes:
    """``img`` (BGR) as JPEG bytes, quality 90, plus OpenCV ``params``."""
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90, *params])[1].tobytes()


def scan_start(data: bytes) -> int:
    """Offset of the first entropy-coded byte (after the SOS segment)."""
    sos = data.find(b"\xff\xda")
    return sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")


def flip_every_997th(data: bytes) -> bytes:
    """The issue's corruption: every 997th byte after the start-of-scan marker inverted."""
    b = bytearray(data)
    sos = data.find(b"\xff\xda")
    for i in range(sos + 2 + 997, len(b) - 2, 997):
        b[i] ^= 0xFF
    return bytes(b)


def early_eoi(data: bytes, keep=0.14) -> bytes:
    """The scan cut after ``keep`` of its bytes, then an end-of-image marker."""
    start = scan_start(data)
    cut = data[: start + int((len(data) - start) * keep)]
    return cut.rstrip(b"\xff") + b"\xff\xd9"


def tf_rejects(data: bytes) -> bool:
    try:
        tf.io.decode_jpeg(data, dct_method="INTEGER_ACCURATE")
    except tf.errors.InvalidArgumentError:
        return True
    return False


def corrupt_jpeg_only_tf_rejects() -> bytes:
    """A flipped-bytes JPEG that OpenCV decodes (the old up-front check) and tf.data's decoder does not."""
    for seed in range(40):
        bad = flip_every_997th(jpeg(textured(seed=seed)))
        if tf_rejects(bad) and cv2.imdecode(np.frombuffer(bad, np.uint8), cv2.IMREAD_UNCHANGED) is not None:
            return bad
    pytest.fail("no seed gives a JPEG that only TensorFlow rejects")


def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_header_only(w: int, h: int, colour: int = 2, rows: int = 4) -> bytes:
    """A PNG whose IHDR claims ``w`` x ``h``, with zero rows for the first ``rows`` lines only (a few KB)."""
    bpp = {0: 1, 2: 3}[colour]
    comp = zlib.compressobj()
    row = b"\0" * (1 + w * bpp)
    idat = b"".join(comp.compress(row) for _ in range(rows)) + comp.flush(zlib.Z_SYNC_FLUSH)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def webp_lossless_header(w: int, h: int) -> bytes:
    """A 38-byte lossless WebP (VP8L) claiming ``w`` x ``h``; its pixel data is a stub."""
    bits = (w - 1) | (h - 1) << 14  # 14 + 14 bits, alpha 0, version 0
    payload = b"\x2f" + struct.pack("<I", bits) + b"\0" * 13
    chunk = b"VP8L" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def webp_extended_header(w: int, h: int) -> bytes:
    """A VP8X (extended) WebP header claiming a ``w`` x ``h`` canvas."""
    payload = b"\0\0\0\0" + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
    chunk = b"VP8X" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def gif_header(w: int, h: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", w, h) + b"\0\0\0" + b"\x3b"


def with_exif_orientation(data: bytes, tag: int, big_endian: bool = True) -> bytes:
    """``data`` (a JPEG) with an APP1 Exif segment holding only ``Orientation = tag``, after SOI."""
    e = ">" if big_endian else "<"
    tiff = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    tiff += struct.pack(e + "H", 1) + struct.pack(e + "HHIHH", 0x0112, 3, 1, tag, 0) + struct.pack(e + "I", 0)
    body = b"Exif\0\0" + tiff
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + data[2:]


def two_folders(tmp_path, bad_name: str, bad: bytes, good: bytes, n_good=4) -> Path:
    """A/ and B/ with ``n_good`` good pairs and one pair whose A file is ``bad``."""
    for side in "AB":
        (tmp_path / side).mkdir(parents=True)
        for i in range(n_good):
            (tmp_path / side / f"{i}.jpg").write_bytes(good)
    (tmp_path / "A" / bad_name).write_bytes(bad)
    (tmp_path / "B" / bad_name).write_bytes(good)
    return tmp_path


def graph_error(path) -> str:
    """The InvalidArgumentError message of decoding ``path`` inside tf.data (graph mode)."""
    ds = tf.data.Dataset.from_tensor_slices([str(path)]).map(decode_image_tf)
    with pytest.raises(tf.errors.InvalidArgumentError) as ei:
        list(ds)
    return ei.value.message


# ----------------------------------------------------------------------------- 1. corrupt JPEG


def test_corrupt_jpeg_rejected_up_front_like_tf_data(tmp_path):
    bad = corrupt_jpeg_only_tf_rejects()
    root = two_folders(tmp_path, "bad.jpg", bad, jpeg(textured(seed=99)))
    with pytest.raises(DataError) as ei:
        TwoFolders(root / "A", root / "B")
    msg = str(ei.value)
    assert "1 of 5" in msg and "bad.jpg: corrupt JPEG" in msg and "TensorFlow's decoder" in msg, msg
    src = TwoFolders(root / "A", root / "B", validate=False)  # the good pairs still read, the same in both decoders
    good = src.files_a.index(root / "A" / "0.jpg")
    np.testing.assert_array_equal(src.read_pair(good)["x"], src.load(tf.constant(good))["x"].numpy())


def test_flipped_facades_jpegs_up_front_check_is_at_least_as_strict_as_tf():
    if not FACADES.is_dir():
        pytest.skip(f"{FACADES} not present")
    files = sorted(FACADES.glob("*.jpg"))[:12]
    rejected = 0
    for f in files:
        bad = flip_every_997th(f.read_bytes())
        if tf_rejects(bad):
            rejected += 1
            p = Path("/nonexistent") / f.name  # only the message: read from bytes below
            with pytest.raises(DataError, match="corrupt JPEG"):
                images._decode_jpeg_eager(bad, p)
    assert rejected, "expected some flipped facades files to be rejected by TensorFlow"


# ----------------------------------------------------------------------------- 2. early end of image


def test_early_end_of_image_is_corrupt_in_both_decoders(tmp_path):
    good = jpeg(textured())
    short = early_eoi(good)
    raw = tf.io.decode_jpeg(short, dct_method="INTEGER_ACCURATE").numpy()  # libjpeg grey-fills, no error
    assert (raw == 128).all(-1).mean() > 0.5
    assert cv2.imdecode(np.frombuffer(short, np.uint8), cv2.IMREAD_UNCHANGED) is not None
    p = tmp_path / "early.jpg"
    p.write_bytes(short)
    with pytest.raises(DataError, match=r"early\.jpg: corrupt JPEG.*ends before the last pixel"):
        read_image(p)
    assert "early.jpg" in graph_error(p) and "ends before the last pixel" in graph_error(p)
    with pytest.raises(tf.errors.InvalidArgumentError, match="early.jpg"):
        decode_image_tf(str(p))  # eagerly too


@pytest.mark.parametrize("progressive", [0, 1])
def test_jpeg_ending_in_mid_grey_is_not_flagged(tmp_path, progressive):
    img = np.full((64, 80, 3), 128, np.uint8)
    img[:24] = textured(24, 80)
    p = tmp_path / "grey_bottom.jpg"
    p.write_bytes(jpeg(img, [cv2.IMWRITE_JPEG_PROGRESSIVE, progressive]))
    a = read_image(p)
    assert (a[-8:, -8:] == 128).all()  # the trap decode ran, and agreed
    np.testing.assert_array_equal(a, decode_image_tf(str(p)).numpy())


# ----------------------------------------------------------------------------- 3. decompression bombs


def encoded(ext, params=(), h=37, w=53) -> bytes:
    return cv2.imencode(ext, textured(h, w), list(params))[1].tobytes()


HEADERS = {
    "png": lambda: encoded(".png"),
    "jpeg": lambda: encoded(".jpg"),
    "jpeg progressive": lambda: encoded(".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
    "jpeg with exif": lambda: with_exif_orientation(encoded(".jpg"), 6),
    "bmp": lambda: encoded(".bmp"),
    "webp lossy": lambda: encoded(".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),
    "webp lossless": lambda: encoded(".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),
}


@pytest.mark.parametrize("kind", sorted(HEADERS))
def test_header_size_matches_decoded_size(kind):
    data = HEADERS[kind]()
    h, w = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED).shape[:2]
    assert images.image_size(data) == (h, w) == (37, 53)
    assert images.header_size_tf(tf.constant(data)).numpy().tolist() == [h, w]


@pytest.mark.parametrize("data, hw", [
    (webp_lossless_header(16383, 16383), (16383, 16383)),
    (webp_extended_header(20000, 30000), (30000, 20000)),
    (gif_header(40000, 30000), (30000, 40000)),
    (png_header_only(50000, 50000), (50000, 50000)),
], ids=["vp8l", "vp8x", "gif", "png"])
def test_crafted_headers_are_read(data, hw):
    assert images.image_size(data) == hw
    assert tuple(images.header_size_tf(tf.constant(data)).numpy()) == hw


def test_tiff_and_bmp_top_down_headers():
    tiff = encoded(".tiff")
    assert images.image_size(tiff) == (37, 53)
    bmp = bytearray(encoded(".bmp"))
    bmp[22:26] = struct.pack("<i", -37)  # top-down rows: negative height
    assert images.image_size(bytes(bmp)) == (37, 53)
    assert tuple(images.header_size_tf(tf.constant(bytes(bmp))).numpy()) == (37, 53)


def no_decoding(monkeypatch):
    """Any decode by OpenCV fails the test: the limit must be applied before."""
    def refuse(*_):
        raise AssertionError("decoded a file that is too large")
    monkeypatch.setattr(images.cv2, "imdecode", refuse)


def test_png_bomb_refused_before_decoding(tmp_path, monkeypatch):
    p = tmp_path / "bomb.png"
    p.write_bytes(png_header_only(12000, 12000))
    assert p.stat().st_size < 10_000
    no_decoding(monkeypatch)
    with pytest.raises(DataError) as ei:
        read_image(p)
    msg = str(ei.value)
    assert "bomb.png: image too large: 12000x12000" in msg and str(images.DEFAULT_MAX_PIXELS) in msg, msg
    assert images.MAX_PIXELS_ENV in msg and "corrupt" not in msg, msg


def test_50000_square_header_is_too_large_not_corrupt(tmp_path):
    for name, data in [("huge.png", png_header_only(50000, 50000)), ("huge.webp", webp_lossless_header(16383, 16383)),
                       ("huge.gif", gif_header(50000, 50000))]:
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(DataError, match=f"{name}: image too large"):
            read_image(p)


def test_jpeg_header_bomb(tmp_path, monkeypatch):
    data = bytearray(jpeg(textured(16, 16)))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60000, 60000)
    p = tmp_path / "bomb.jpg"
    p.write_bytes(bytes(data))
    monkeypatch.setattr(images.tf.io, "decode_jpeg", lambda *a, **k: pytest.fail("decoded"))
    with pytest.raises(DataError, match="bomb.jpg: image too large: 60000x60000"):
        read_image(p)


def test_typical_data_set_sizes_pass():
    for h, w in [(1024, 2048), (1024, 1024), (3024, 4032)]:  # Cityscapes, CelebA-HQ, a 12 MP photo
        assert h * w <= images.max_pixels()


def test_limit_is_configurable_by_environment(tmp_path, monkeypatch):
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), textured(10, 10))
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), textured(12, 12))
    monkeypatch.setenv(images.MAX_PIXELS_ENV, "100")
    assert images.max_pixels() == 100
    assert read_image(small).shape == (10, 10, 3)
    with pytest.raises(DataError, match=r"big\.png: image too large: 12x12 \(WxH\) = 144 pixels, more than the limit "
                                        r"of 100"):
        read_image(big)
    assert "big.png" in graph_error(big) and "too large" in graph_error(big)  # the graph reads the limit when built
    monkeypatch.setenv(images.MAX_PIXELS_ENV, "lots")
    with pytest.raises(DataError, match="TFI2I_MAX_PIXELS='lots' is not valid"):
        read_image(small)
    monkeypatch.setenv(images.MAX_PIXELS_ENV, str(200 * 200))
    assert read_image(big).shape == (12, 12, 3)


def test_limit_at_every_entry_point(tmp_path, monkeypatch):
    from tfi2i import evaluate, translate

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(12000, 12000))
    ids_bomb = tmp_path / "ids.png"
    ids_bomb.write_bytes(png_header_only(12000, 12000, colour=0))
    no_decoding(monkeypatch)
    # training data (up-front validation) and the tf.data decoders
    root = two_folders(tmp_path / "pairs", "bomb.png", bomb.read_bytes(), jpeg(textured(16, 16)))
    with pytest.raises(DataError, match="bomb.png: image too large"):
        TwoFolders(root / "A", root / "B")
    assert "bomb.png" in graph_error(bomb) and "too large" in graph_error(bomb)
    with pytest.raises(DataError, match="ids.png: image too large"):
        images.read_ids(ids_bomb)
    with pytest.raises(tf.errors.InvalidArgumentError, match="ids.png"):
        images.decode_ids_tf(str(ids_bomb))
    # evaluate and translate
    with pytest.raises(evaluate.EvaluationError, match="too large"):
        evaluate.read_image(bomb)
    with pytest.raises(DataError, match="too large"):
        translate._read_input(SimpleNamespace(kind="image", channels=3), bomb)


@pytest.mark.parametrize("data", [webp_lossless_header(16383, 16383), webp_extended_header(16000, 16000),
                                  gif_header(30000, 30000), png_header_only(12000, 12000)],
                         ids=["webp-vp8l-38-bytes", "webp-vp8x", "gif", "png"])
def test_serving_checks_every_header_before_decoding(data):
    from tfi2i import export

    spec = SimpleNamespace(name="x", kind="image", channels=3)
    fn = tf.function(lambda d: export._decode_input(spec, d, export.DEFAULT_MAX_PIXELS))
    t0 = time.perf_counter()
    with pytest.raises(tf.errors.InvalidArgumentError) as ei:
        fn(tf.constant(data))
    assert f"max_pixels={export.DEFAULT_MAX_PIXELS}" in ei.value.message
    assert "before decoding" in ei.value.message, ei.value.message
    assert time.perf_counter() - t0 < 30


def test_export_uses_the_one_limit(monkeypatch):
    from tfi2i import export

    assert export.DEFAULT_MAX_PIXELS == images.DEFAULT_MAX_PIXELS
    p = export.add_parser(__import__("argparse").ArgumentParser().add_subparsers())
    assert p.parse_args(["--workdir", "w"]).max_pixels is None  # resolved by export_model: $TFI2I_MAX_PIXELS


# ----------------------------------------------------------------------------- 4. validate=False, EXIF


def test_bad_files_name_the_file_in_tf_data(tmp_path):
    """With data.validate=false the tf.data decoder itself names the file for every check of ours."""
    good = jpeg(textured(32, 32))
    cases = {
        "short.jpg": early_eoi(jpeg(textured())),
        "bomb.png": png_header_only(12000, 12000),
        "bomb.webp": webp_lossless_header(16383, 16383),
        "tiff.png": cv2.imencode(".tiff", textured(8, 8))[1].tobytes(),
    }
    for name, data in cases.items():
        root = two_folders(tmp_path / name.replace(".", "_"), name, data, good, n_good=1)
        src = TwoFolders(root / "A", root / "B", validate=False)
        ds = tf.data.Dataset.range(len(src)).map(src.load)
        with pytest.raises(tf.errors.InvalidArgumentError) as ei:
            list(ds)
        assert name in ei.value.message, (name, ei.value.message[:300])


def test_exif_orientation_is_ignored_with_one_warning_per_file(tmp_path, caplog):
    plain = jpeg(textured(24, 40))
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    a.write_bytes(with_exif_orientation(plain, 6))
    b.write_bytes(with_exif_orientation(plain, 6, big_endian=False))
    assert images._jpeg_orientation(a.read_bytes()) == images._jpeg_orientation(b.read_bytes()) == 6
    assert images._jpeg_orientation(plain) == 0
    reference = tf.io.decode_jpeg(plain, dct_method="INTEGER_ACCURATE").numpy()
    with caplog.at_level(logging.WARNING, logger="tfi2i.data"):
        for _ in range(2):
            for p in (a, b):
                img = read_image(p)
                np.testing.assert_array_equal(img, reference)  # as stored: 24 x 40, not rotated
                np.testing.assert_array_equal(decode_image_tf(str(p)).numpy(), img)
    warnings = [r.getMessage() for r in caplog.records if "EXIF orientation 6" in r.getMessage()]
    assert len(warnings) == 2 and "a.jpg" in warnings[0] and "b.jpg" in warnings[1], warnings
    assert "rotated 90 degrees clockwise" in warnings[0]


def test_exif_orientation_1_is_silent(tmp_path, caplog):
    p = tmp_path / "upright.jpg"
    p.write_bytes(with_exif_orientation(jpeg(textured(16, 16)), 1))
    with caplog.at_level(logging.WARNING, logger="tfi2i.data"):
        read_image(p)
    assert not [r for r in caplog.records if "EXIF" in r.getMessage()]


def test_raw_decoder_error_is_traced_to_its_file_by_validate(tmp_path):
    """What the training loop can do when tf.data's decoder fails with its own (path-less) message.

    ``jpeg::Uncompress failed`` is an op error, which no graph code can catch or extend; the
    source's eager check (``validate()``, the up-front check) then names the file.
    """
    root = two_folders(tmp_path, "bad.jpg", corrupt_jpeg_only_tf_rejects(), jpeg(textured(32, 32)), n_good=2)
    src = TwoFolders(root / "A", root / "B", validate=False)
    with pytest.raises(tf.errors.InvalidArgumentError) as ei:
        list(tf.data.Dataset.range(len(src)).map(src.load))
    assert "bad.jpg" not in ei.value.message  # the decoder's message cannot name it
    with pytest.raises(DataError, match=r"(?s)1 of 3 .*bad\.jpg: corrupt JPEG .*\(jpeg::Uncompress failed\. Invalid JPEG data"):
        src.validate()


def test_training_loop_names_the_file_behind_a_raw_decoder_error(tmp_path):
    """`train._next_batch` turns tf.data's path-less decoder error into one that names the file."""
    from tfi2i.train import TrainingError, _next_batch

    root = two_folders(tmp_path, "bad.jpg", corrupt_jpeg_only_tf_rejects(), jpeg(textured(32, 32)), n_good=2)
    src = TwoFolders(root / "A", root / "B", validate=False)
    ds = tf.data.Dataset.range(len(src)).map(src.load).batch(3)
    with pytest.raises(TrainingError, match=r"(?s)bad training data.*bad\.jpg: corrupt JPEG"):
        _next_batch(iter(ds), "training data", str(tmp_path / "W"), source=src)


# ----------------------------------------------------------------------------- 2b. progressive JPEG cut early


def scans_of(data: bytes) -> list[int]:
    """Offsets of the start-of-scan markers of an encoder's JPEG (no embedded thumbnails: every FF DA is one)."""
    return [m.start() for m in re.finditer(rb"\xff\xda", data)]


def cut_after_scans(data: bytes, k: int) -> bytes:
    """``data`` with only its first ``k`` scans, then an end-of-image marker (the tables of scan k+1 may stay)."""
    return data[: scans_of(data)[k]] + b"\xff\xd9"


def pil_jpeg(img, **options) -> bytes:
    """``img`` (BGR, or grey) saved by PIL as JPEG with ``options``."""
    image = pytest.importorskip("PIL.Image")
    buf = io.BytesIO()
    image.fromarray(img[..., ::-1] if img.ndim == 3 else img).save(buf, "JPEG", quality=90, **options)
    return buf.getvalue()


@tf.function(input_signature=[tf.TensorSpec([], tf.string)])
def _progressive_ok_graph(data):
    return images._progressive_complete_tf(data)


def progressive_ok_tf(data: bytes) -> bool:
    """The graph check as tf.data runs it (traced once, not a while loop op by op)."""
    return bool(_progressive_ok_graph(tf.constant(data)).numpy())


@tf.function(input_signature=[tf.TensorSpec([], tf.string)])
def decode_graph(path):
    return decode_image_tf(path)


@pytest.mark.parametrize("k", [1, 2])
def test_progressive_jpeg_cut_after_a_scan_is_corrupt_in_both_decoders(tmp_path, k):
    good = jpeg(textured(), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert len(scans_of(good)) > 2
    cut = cut_after_scans(good, k)
    raw = tf.io.decode_jpeg(cut, dct_method="INTEGER_ACCURATE").numpy()  # no error, no warning, no grey fill
    assert not (raw[-8:, -8:] == 128).all() and not np.array_equal(raw, tf.io.decode_jpeg(good).numpy())
    p = tmp_path / f"cut{k}.jpg"
    p.write_bytes(cut)
    with pytest.raises(DataError, match=rf"cut{k}\.jpg: corrupt JPEG \(\d+ bytes\): a progressive JPEG whose scans "
                                        rf"stop early \(its {k} scan\(s\) leave coefficients of component\(s\) 1, 2, 3 "
                                        "unfinished"):
        read_image(p)
    message = graph_error(p)  # tf.data (data.validate=false)
    assert f"cut{k}.jpg" in message and "progressive JPEG whose scans stop early" in message, message
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"cut{k}.jpg"):
        decode_image_tf(str(p))  # eagerly too
    root = two_folders(tmp_path / "pairs", f"cut{k}.jpg", cut, jpeg(textured(32, 32)), n_good=2)
    with pytest.raises(DataError, match=rf"(?s)1 of 3 .*cut{k}\.jpg: corrupt JPEG \(\d+ bytes\): a progressive"):
        TwoFolders(root / "A", root / "B")  # the up-front check


def test_every_early_cut_of_a_progressive_script_is_found_by_both_parsers():
    for data in (jpeg(textured(48, 40), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
                 jpeg(cv2.cvtColor(textured(24, 32), cv2.COLOR_BGR2GRAY), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
                 pil_jpeg(textured(40, 56), progressive=True, subsampling=0)):
        n = len(scans_of(data))
        for k in range(1, n):
            cut = cut_after_scans(data, k)
            assert images._progressive_gap(cut) is not None and not progressive_ok_tf(cut), (n, k)
        assert images._progressive_gap(data) is None and progressive_ok_tf(data)


def test_complete_progressive_and_baseline_jpegs_are_not_flagged(tmp_path):
    img, grey = textured(45, 61), cv2.cvtColor(textured(45, 61), cv2.COLOR_BGR2GRAY)
    files = {
        "cv2-progressive": jpeg(img, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
        "cv2-progressive-grey": jpeg(grey, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
        "cv2-progressive-optimized": jpeg(img, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1, cv2.IMWRITE_JPEG_OPTIMIZE, 1]),
        "cv2-progressive-exif": with_exif_orientation(jpeg(img, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), 1),
        "cv2-baseline": jpeg(img),
        "pil-progressive-420": pil_jpeg(img, progressive=True),
        "pil-progressive-444": pil_jpeg(img, progressive=True, subsampling=0),
        "pil-progressive-optimized": pil_jpeg(img, progressive=True, optimize=True),
        "pil-progressive-grey": pil_jpeg(grey, progressive=True),
        "pil-baseline": pil_jpeg(img),
    }
    for name, data in files.items():
        assert images._progressive_gap(data) is None and progressive_ok_tf(data), name
        p = tmp_path / f"{name}.jpg"
        p.write_bytes(data)
        np.testing.assert_array_equal(read_image(p), decode_graph(tf.constant(str(p))).numpy(), err_msg=name)
    assert len(scans_of(files["pil-progressive-420"])) > 2 and len(scans_of(files["cv2-baseline"])) == 1
