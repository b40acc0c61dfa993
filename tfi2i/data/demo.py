"""An embedded demo data set that the project generates itself: labels -> "photos".

Deterministic (seeded NumPy RNG, one independent stream per image), fast (well
under a second per 50 pairs at 256x256) and needing no download, it lets
recipes, notebooks and tests run end to end anywhere.

Each pair is a procedural street scene. The label map (A) uses six classes
drawn with OpenCV (no anti-aliasing, so it holds only palette colours):

=========  ===============  =================================================
class      colour (RGB)     shapes                    photo texture (B)
=========  ===============  =================================================
sky        (70, 130, 180)   background above horizon  blue gradient + clouds
ground     (152, 251, 152)  background below horizon  grass: green fractal noise
road       (128, 64, 128)   perspective polygon       asphalt grey, fine grain
building   (70, 70, 70)     rectangles, roof polygons brick or plaster, shaded
window     (250, 170, 30)   grids of rectangles       dark glass, light frame
tree       (107, 142, 35)   ellipse crowns + trunks   blotchy foliage, shaded
=========  ===============  =================================================

Per-class textures make label -> photo learnable (with some per-instance
variation, e.g. wall colour, that a GAN must hallucinate, as in real data).

Files are pix2pix side-by-side PNGs, ``size x 2*size``: A = label map on the
left, B = photo on the right, so labels -> photo is ``direction="AtoB"``.
``root/train/0000.png ...`` and ``root/val/0000.png ...``; a marker file
``root/demo.json`` records the generation parameters. The single-image
variant (``photos_only=True``, its own cache folder) holds only the photos:
the derived tasks (super-resolution, inpainting) train on them.

:func:`make_label_demo` writes a different, tiny set for label-map models
(pix2pixHD-style inputs): two folders ``A/`` (photos), ``B/`` (1-channel
class-id PNGs) and optionally ``inst/`` (16-bit instance-id PNGs), at a
rectangular size.

:func:`make_face_demo` writes synthetic faces in the CelebAMask-HQ layout
(:mod:`tfi2i.data.celebamask`): photos ``CelebA-HQ-img/<id>.jpg`` at twice
the masks' size, per-part masks ``CelebAMask-HQ-mask-anno/<id // 2000>/
<id:05d>_<part>.png``, the id mapping and a partition file, for the face
models (GRIT) and the layout's tests; :func:`ensure_face_demo` caches it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from tfi2i.data.images import PathLike

__all__ = ["DEMO_VERSION", "CLASSES", "PALETTE", "make_demo", "default_demo_root", "ensure_demo", "make_label_demo",
           "ensure_label_demo", "FACE_DEMO_VERSION", "make_face_demo", "ensure_face_demo"]

#: Bump when the generated images change, so cached copies are regenerated.
DEMO_VERSION = 1

#: Class names; the index is the class id.
CLASSES = ("sky", "ground", "road", "building", "window", "tree")
#: RGB colour of each class in the label maps, ``uint8 [6, 3]``.
PALETTE = np.array(
    [(70, 130, 180), (152, 251, 152), (128, 64, 128), (70, 70, 70), (250, 170, 30), (107, 142, 35)],
    dtype=np.uint8,
)
SKY, GROUND, ROAD, BUILDING, WINDOW, TREE = range(len(CLASSES))

_MARKER = "demo.json"
_SPLIT_IDS = {"train": 0, "val": 1}


# --------------------------------------------------------------------------- noise


def _noise(rng: np.random.Generator, size: int, cell: int) -> np.ndarray:
    """Smooth value noise, float32 ``[size, size]``, about zero mean, unit std."""
    n = size // cell + 2
    grid = rng.standard_normal((n, n)).astype(np.float32)
    big = cv2.resize(grid, (n * cell, n * cell), interpolation=cv2.INTER_CUBIC)
    return big[:size, :size]


def _fractal(rng: np.random.Generator, size: int, cells=(64, 32, 16, 8)) -> np.ndarray:
    """Sum of octaves of :func:`_noise`, float32 ``[size, size]``, roughly in [-1, 1]."""
    out = np.zeros((size, size), np.float32)
    amp, total = 1.0, 0.0
    for c in cells:
        out += amp * _noise(rng, size, max(1, c * size // 256))
        total += amp
        amp *= 0.55
    return out / (total * 1.2)


# --------------------------------------------------------------------------- scene


def _draw_labels(rng: np.random.Generator, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Draw one label map.

    Returns:
        (labels uint8 ``[s, s]`` class ids, building instance ids uint8 ``[s, s]``
        (0 = none, k = k-th building), trunk mask bool ``[s, s]`` (the part of the
        tree class rendered as bark), horizon row).
    """
    lab = np.full((s, s), SKY, np.uint8)
    inst = np.zeros((s, s), np.uint8)
    trunk = np.zeros((s, s), np.uint8)
    horizon = int(s * rng.uniform(0.45, 0.65))
    lab[horizon:] = GROUND

    # Road: a trapezoid from the bottom edge to a vanishing point on the horizon.
    vx = int(s * rng.uniform(0.3, 0.7))
    half_far = max(1, int(s * rng.uniform(0.01, 0.03)))
    bl, br = sorted(int(s * v) for v in rng.uniform(-0.2, 1.2, size=2))
    if br - bl < s // 4:
        br = bl + s // 4
    road = np.array([[bl, s - 1], [br, s - 1], [vx + half_far, horizon], [vx - half_far, horizon]],
                    np.int32)
    cv2.fillPoly(lab, [road], ROAD, lineType=cv2.LINE_8)

    # Buildings standing on the horizon, some with a triangular roof, with windows.
    for k in range(int(rng.integers(1, 5))):
        w = int(s * rng.uniform(0.15, 0.35))
        x0 = int(rng.integers(-w // 3, s - w // 2))
        h = int(s * rng.uniform(0.2, 0.45))
        base = horizon + int(rng.integers(0, max(1, s // 40)))
        top = max(2, base - h)
        x1 = x0 + w
        cv2.rectangle(lab, (x0, top), (x1, base), BUILDING, thickness=-1)
        cv2.rectangle(inst, (x0, top), (x1, base), k + 1, thickness=-1)
        if rng.random() < 0.4:
            peak = max(0, top - int(w * rng.uniform(0.2, 0.45)))
            roof = np.array([[x0, top], [x1, top], [(x0 + x1) // 2, peak]], np.int32)
            cv2.fillPoly(lab, [roof], BUILDING)
            cv2.fillPoly(inst, [roof], k + 1)
        ww = max(3, int(w * rng.uniform(0.1, 0.18)))
        wh = max(3, int(ww * rng.uniform(1.0, 1.8)))
        gx, gy = int(ww * rng.uniform(0.6, 1.2)) + 2, int(wh * rng.uniform(0.5, 0.9)) + 2
        for y in range(top + gy, base - wh - gy // 2, wh + gy):
            for x in range(x0 + gx, x1 - ww - gx // 2 + 1, ww + gx):
                cv2.rectangle(lab, (x, y), (x + ww - 1, y + wh - 1), WINDOW, thickness=-1)

    # Trees: trunks and elliptic crowns, in front of buildings, roots below horizon.
    for _ in range(int(rng.integers(0, 5))):
        cx = int(rng.integers(0, s))
        ground_y = horizon + int(rng.integers(0, max(2, (s - horizon) // 2)))
        rx = int(s * rng.uniform(0.04, 0.1) * (1 + (ground_y - horizon) / s))
        ry = int(rx * rng.uniform(1.0, 1.6))
        trunk_h = int(ry * rng.uniform(0.6, 1.2))
        cy = ground_y - trunk_h - ry // 2
        tw = max(2, rx // 4)
        cv2.rectangle(lab, (cx - tw // 2, cy), (cx + tw // 2, ground_y), TREE, thickness=-1)
        cv2.rectangle(trunk, (cx - tw // 2, cy), (cx + tw // 2, ground_y), 1, thickness=-1)
        angle = float(rng.uniform(-15, 15))
        cv2.ellipse(lab, (cx, cy), (rx, ry), angle, 0, 360, TREE, thickness=-1, lineType=cv2.LINE_8)
        cv2.ellipse(trunk, (cx, cy), (rx, ry), angle, 0, 360, 0, thickness=-1, lineType=cv2.LINE_8)
    inst[lab == TREE] = 0
    return lab, inst, trunk.astype(bool) & (lab == TREE), horizon


def _render_photo(rng: np.random.Generator, lab: np.ndarray, inst: np.ndarray,
                  trunk: np.ndarray, horizon: int) -> np.ndarray:
    """Render the textured "photo" of a label map, uint8 ``[s, s, 3]`` RGB."""
    s = lab.shape[0]
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / np.float32(s)
    photo = np.zeros((s, s, 3), np.float32)

    def put(mask: np.ndarray, img: np.ndarray) -> None:
        photo[mask] = img[mask]

    # Sky: vertical gradient (deep blue at the top, pale at the horizon) + clouds.
    hz = max(horizon, 1) / s
    t = np.clip(yy / hz, 0, 1)[..., None]
    top_c = np.array([45, 95, 175], np.float32) + rng.uniform(-15, 15, 3).astype(np.float32)
    hor_c = np.array([175, 205, 235], np.float32)
    sky = top_c * (1 - t) + hor_c * t
    clouds = np.clip((_fractal(rng, s) - rng.uniform(0.0, 0.25)) * 2.5, 0, 1)[..., None]
    sky = sky * (1 - 0.75 * clouds) + 245 * 0.75 * clouds
    put(lab == SKY, sky)

    # Ground: grass, green fractal noise, brighter near the horizon.
    g = _fractal(rng, s)[..., None]
    fine = _noise(rng, s, 2)[..., None]
    grass = np.array([70, 125, 45], np.float32) * (0.8 + 0.35 * g + 0.05 * fine)
    grass *= (1.15 - 0.3 * np.clip((yy - hz) / max(1e-3, 1 - hz), 0, 1))[..., None]
    put(lab == GROUND, grass)

    # Road: asphalt grey with fine grain, lighter towards the horizon.
    grain = rng.standard_normal((s, s)).astype(np.float32)[..., None]
    asphalt = (np.float32(95) + 8 * _noise(rng, s, 4)[..., None] + 6 * grain) * np.ones(3, np.float32)
    asphalt *= (1.2 - 0.35 * np.clip((yy - hz) / max(1e-3, 1 - hz), 0, 1))[..., None]
    put(lab == ROAD, asphalt)

    # Buildings: per-instance wall colour, brick or plaster, shaded left to right.
    walls = np.array([(165, 80, 60), (190, 170, 140), (150, 150, 155), (200, 190, 170), (120, 90, 70)],
                     np.float32)
    for k in range(1, int(inst.max()) + 1):
        m = (inst == k) & (lab == BUILDING)
        if not m.any():
            continue
        col = walls[int(rng.integers(len(walls)))] + rng.uniform(-12, 12, 3).astype(np.float32)
        ys, xs = np.nonzero(m)
        x0, x1 = xs.min(), xs.max() + 1
        shade = 0.8 + 0.25 * np.clip((xx * s - x0) / max(1, x1 - x0), 0, 1)
        wall = col * shade[..., None] * (1 + 0.06 * _noise(rng, s, 8))[..., None]
        if rng.random() < 0.5:  # brick: mortar rows and staggered joints
            bh = int(rng.integers(max(3, s // 64), max(4, s // 28)))
            bw = 2 * bh + 1
            row = (np.arange(s) // bh)[:, None]
            mortar = (np.arange(s)[:, None] % bh == 0) | (
                ((np.arange(s)[None, :] + (row % 2) * (bw // 2)) % bw) == 0)
            wall = np.where(mortar[..., None], np.float32(205), wall)
        put(m, wall)

    # Windows: dark glass with a vertical reflection gradient and a light frame.
    wmask = (lab == WINDOW).astype(np.uint8)
    if wmask.any():
        glass = (np.array([35, 50, 70], np.float32) + 60 * (1 - yy)[..., None] * 0.5
                 + 20 * _noise(rng, s, 16)[..., None])
        inner = cv2.erode(wmask, np.ones((3, 3), np.uint8)).astype(bool)
        frame = wmask.astype(bool) & ~inner
        put(inner, glass)
        photo[frame] = np.array([225, 222, 210], np.float32)

    # Trees: blotchy foliage lighter at the top; bark-brown trunks.
    tmask = lab == TREE
    if tmask.any():
        blot = _noise(rng, s, 3)[..., None] * 0.5 + _noise(rng, s, 8)[..., None] * 0.5
        leaves = np.array([45, 95, 35], np.float32) * (0.9 + 0.45 * blot) * (1.25 - 0.4 * yy)[..., None]
        leaves[trunk] = np.array([95, 70, 45], np.float32)
        put(tmask, leaves)

    # Camera: global light gradient, slight blur, sensor noise.
    light = 0.92 + 0.16 * (1 - xx) * rng.uniform(0.5, 1.0)
    photo *= light[..., None]
    photo = cv2.GaussianBlur(photo, (3, 3), 0.7)
    photo += 2.5 * rng.standard_normal(photo.shape).astype(np.float32)
    return np.clip(np.rint(photo), 0, 255).astype(np.uint8)


def _make_pair(seed: int, split: str, index: int, size: int) -> np.ndarray:
    """One side-by-side pair, uint8 ``[size, 2*size, 3]`` RGB (labels left, photo right)."""
    rng = np.random.default_rng([DEMO_VERSION, seed, _SPLIT_IDS[split], index])
    lab, inst, trunk, horizon = _draw_labels(rng, size)
    photo = _render_photo(rng, lab, inst, trunk, horizon)
    return np.concatenate([PALETTE[lab], photo], axis=1)


# --------------------------------------------------------------------------- files


def _params(num_train: int, num_val: int, size: int, seed: int, photos_only: bool = False) -> dict:
    params = {"version": DEMO_VERSION, "num_train": int(num_train), "num_val": int(num_val),
              "size": int(size), "seed": int(seed)}
    if photos_only:  # only then, so that markers of paired sets stay valid
        params["photos_only"] = True
    return params


def _read_marker(root: Path, name: str = _MARKER) -> dict | None:
    try:
        return json.loads((root / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _ensure(root: Path, marker: str, want: dict, make) -> Path:
    """``root`` when its ``marker`` file says ``want``; else ``make()`` (returning ``root``) under the lock."""
    if _read_marker(root, marker) == want:
        return root
    with _generating(root):
        if _read_marker(root, marker) == want:  # another process made it while this one waited
            return root
        return make()


def make_demo(root: PathLike, num_train: int = 48, num_val: int = 8, size: int = 256,
              seed: int = 0, photos_only: bool = False) -> Path:
    """Generate the demo data set into ``root``, replacing whatever is there.

    Writes ``root/train/0000.png ...`` (``num_train`` files), ``root/val/...``
    (``num_val`` files; no ``val/`` when 0) and the marker ``root/demo.json``.
    Each PNG is ``uint8 [size, 2*size, 3]``: label map (A) left, photo (B)
    right. With ``photos_only`` each PNG is only the photo, ``uint8 [size,
    size, 3]`` (the right half of the same pair): single images for the derived
    tasks (super-resolution, inpainting; :mod:`tfi2i.data.degrade`).
    Byte-identical for identical arguments; image ``i`` of a split does not
    depend on how many images are generated.

    The write is atomic: files go to a temporary sibling folder that is then
    renamed to ``root``, so readers never see a half-written data set.

    Args:
        root: destination folder (created with its parents).
        num_train: number of training pairs (>= 1).
        num_val: number of validation pairs (>= 0).
        size: side of each square half, in pixels (>= 32).
        seed: RNG seed.
        photos_only: write only the photos (B) as single images.

    Returns:
        ``root`` as a :class:`pathlib.Path`.

    Raises:
        ValueError: invalid counts or size.
    """
    if int(num_train) < 1 or int(num_val) < 0:
        raise ValueError(f"make_demo needs num_train >= 1 and num_val >= 0, got {num_train}, {num_val}")
    if int(size) < 32:
        raise ValueError(f"make_demo needs size >= 32, got {size}")
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        for split, n in (("train", num_train), ("val", num_val)):
            if n == 0:
                continue
            (tmp / split).mkdir()
            for i in range(int(n)):
                pair = _make_pair(int(seed), split, i, int(size))
                if photos_only:
                    pair = np.ascontiguousarray(pair[:, int(size):])
                ok, buf = cv2.imencode(".png", pair[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 3])
                if not ok:
                    raise OSError(f"cannot encode demo image {split}/{i:04d}.png")
                (tmp / split / f"{i:04d}.png").write_bytes(buf.tobytes())
        (tmp / _MARKER).write_text(
            json.dumps(_params(num_train, num_val, size, seed, photos_only), sort_keys=True) + "\n", encoding="utf-8"
        )
        _replace_folder(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def _replace_folder(tmp, root):
    """Puts the complete folder ``tmp`` at ``root`` (atomic renames; a previous ``root`` is moved aside, then removed)."""
    old = None
    if root.exists() or root.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
        os.replace(root, old / "data")
    os.replace(tmp, root)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def default_demo_root(size: int = 256, photos_only: bool = False) -> Path:
    """``$TFI2I_CACHE`` (default ``~/.cache/tfi2i``) ``/ f"demo_v{DEMO_VERSION}_{size}"``.

    ``demo_photos_v{DEMO_VERSION}_{size}`` with ``photos_only``.
    """
    kind = "demo_photos" if photos_only else "demo"
    return _cache_dir() / f"{kind}_v{DEMO_VERSION}_{int(size)}"


def _cache_dir() -> Path:
    """``$TFI2I_CACHE``, default ``~/.cache/tfi2i``: where the demo sets are generated."""
    return Path(os.environ.get("TFI2I_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "tfi2i"))


@contextlib.contextmanager
def _generating(root: Path):
    """Held while ``root`` is checked and (re)generated: one process generates, the others wait, then find it.

    Two runs (or test workers) started at once on a fresh machine would otherwise both generate the same set,
    and the second one's atomic swap would pull the folder from under the first one's reader. POSIX
    ``flock`` on ``.<name>.lock`` beside ``root``; where ``fcntl`` is absent (Windows) nothing is locked.
    """
    root.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(root.parent / f".{root.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_demo(root: PathLike | None = None, size: int = 256, photos_only: bool = False, **kw) -> Path:
    """Return a demo data set folder, generating it only when needed.

    Generates (with :func:`make_demo`) when ``root`` has no marker file or the
    marker's parameters (version, counts, size, seed) differ from the requested
    ones; otherwise returns at once.

    Args:
        root: folder; default :func:`default_demo_root` for ``size`` and ``photos_only``.
        size: image side (see :func:`make_demo`).
        photos_only: the single-image variant (photos only, see :func:`make_demo`).
        **kw: ``num_train``, ``num_val``, ``seed`` for :func:`make_demo`.

    Returns:
        The folder (with ``train/`` and ``val/`` inside), as a :class:`pathlib.Path`.
    """
    unknown = set(kw) - {"num_train", "num_val", "seed"}
    if unknown:
        raise TypeError(f"ensure_demo got unexpected arguments: {sorted(unknown)}")
    root = Path(root) if root is not None else default_demo_root(size, photos_only)
    args = {"num_train": 48, "num_val": 8, "seed": 0, **kw, "size": size, "photos_only": bool(photos_only)}
    return _ensure(root, _MARKER, _params(**args), lambda: make_demo(root, **args))


# --------------------------------------------------------------------------- label-map demo (two folders)


def _label_scene(rng: np.random.Generator, h: int, w: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Class ids ``uint16 [h, w]`` in ``[0, num_classes)`` and Cityscapes-style instance ids ``uint16 [h, w]``.

    Background: class 0 above a random horizon, class ``1 % num_classes``
    below ("stuff": instance id = class id). Then 2..5 rectangles and
    ellipses of random classes ("things": instance id ``1000 * class + k``,
    ``k`` = 1, 2, ...), so that touching objects of one class still have an
    instance boundary.
    """
    lab = np.zeros((h, w), np.uint16)
    lab[int(h * rng.uniform(0.3, 0.7)):] = 1 % num_classes
    inst = lab.copy()
    for k in range(1, int(rng.integers(2, 6)) + 1):
        c = int(rng.integers(0, num_classes))
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        rx, ry = int(rng.integers(2, max(3, w // 4))), int(rng.integers(2, max(3, h // 3)))
        mask = np.zeros((h, w), np.uint8)
        if rng.random() < 0.5:
            cv2.rectangle(mask, (cx - rx, cy - ry), (cx + rx, cy + ry), 1, thickness=-1)
        else:
            cv2.ellipse(mask, (cx, cy), (rx, ry), 0, 0, 360, 1, thickness=-1, lineType=cv2.LINE_8)
        m = mask.astype(bool)
        lab[m] = c
        inst[m] = 1000 * c + k
    return lab, inst


def _label_photo(rng: np.random.Generator, lab: np.ndarray, inst: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """A "photo" of a label map: per-class colour, per-instance brightness, noise; uint8 ``[h, w, 3]`` RGB."""
    photo = palette[lab].astype(np.float32)
    for v in np.unique(inst):
        photo[inst == v] *= np.float32(rng.uniform(0.8, 1.2))
    photo += 6.0 * rng.standard_normal(photo.shape).astype(np.float32)
    return np.clip(np.rint(photo), 0, 255).astype(np.uint8)


def _png(path: Path, array: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", array, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise OSError(f"cannot encode {path}")
    path.write_bytes(buf.tobytes())


def make_label_demo(root: PathLike, num_train: int = 8, num_val: int = 2, size: tuple[int, int] = (32, 64),
                    num_classes: int = 5, instances: bool = True, seed: int = 0) -> Path:
    """Write a tiny synthetic label-map data set in the two-folder layout, replacing ``root``.

    Layout (``SPLIT`` = ``train``, and ``val`` when ``num_val > 0``)::

        root/SPLIT/A/0000.png     photo, uint8 RGB [H, W, 3]
        root/SPLIT/B/0000.png     class ids, 1-channel PNG: 8-bit (16-bit when num_classes > 256),
                                  values in [0, num_classes)
        root/SPLIT/inst/0000.png  instance ids, 1-channel 16-bit PNG (instances=True): "stuff"
                                  pixels hold their class id, objects 1000 * class + k (k = 1, 2, ...),
                                  like Cityscapes *_instanceIds.png
        root/label_demo.json      the generation parameters

    Each photo is a per-class colour with per-instance brightness and noise, so
    labels -> photo is learnable. Read it as labels -> photo with::

        DataConfig(path=str(root), direction="BtoA", x_kind="labels", num_classes=num_classes,
                   instances="inst", crop_size=size, load_size=size)

    Deterministic: byte-identical for identical arguments (image ``i`` of a
    split does not depend on the counts); a few milliseconds per image at the
    default size. The write is atomic like :func:`make_demo`'s.

    Args:
        root: destination folder (created with its parents).
        num_train: training examples (>= 1).
        num_val: validation examples (>= 0).
        size: ``(height, width)`` of every image, each >= 8 (default 32x64, H x W: W = 2 H).
        num_classes: number of classes (>= 2); ids lie in ``[0, num_classes)``.
        instances: also write ``inst/``.
        seed: RNG seed.

    Returns:
        ``root`` as a :class:`pathlib.Path`.

    Raises:
        ValueError: invalid counts, size or class count.
    """
    h, w = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if int(num_train) < 1 or int(num_val) < 0:
        raise ValueError(f"make_label_demo needs num_train >= 1 and num_val >= 0, got {num_train}, {num_val}")
    if h < 8 or w < 8:
        raise ValueError(f"make_label_demo needs a size of at least 8x8 (height, width), got {size}")
    if not 2 <= int(num_classes) <= 65536:
        raise ValueError(f"make_label_demo needs 2 <= num_classes <= 65536, got {num_classes}")
    num_classes = int(num_classes)
    palette = np.random.default_rng([DEMO_VERSION, 7919, num_classes]).integers(30, 226, (num_classes, 3))
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        for split, n in (("train", num_train), ("val", num_val)):
            if n == 0:
                continue
            folders = ["A", "B"] + (["inst"] if instances else [])
            for f in folders:
                (tmp / split / f).mkdir(parents=True)
            for i in range(int(n)):
                rng = np.random.default_rng([DEMO_VERSION, 101, int(seed), _SPLIT_IDS[split], i])
                lab, inst = _label_scene(rng, h, w, num_classes)
                photo = _label_photo(rng, lab, inst, palette)
                name = f"{i:04d}.png"
                _png(tmp / split / "A" / name, np.ascontiguousarray(photo[:, :, ::-1]))
                _png(tmp / split / "B" / name, lab.astype(np.uint8) if num_classes <= 256 else lab)
                if instances:
                    _png(tmp / split / "inst" / name, inst)
        params = {"version": DEMO_VERSION, "num_train": int(num_train), "num_val": int(num_val), "size": [h, w],
                  "num_classes": num_classes, "instances": bool(instances), "seed": int(seed)}
        (tmp / "label_demo.json").write_text(json.dumps(params, sort_keys=True) + "\n", encoding="utf-8")
        _replace_folder(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def ensure_label_demo(root: PathLike | None = None, size: tuple[int, int] = (64, 128), num_classes: int = 35,
                      **kw) -> Path:
    """A label-map demo set (:func:`make_label_demo`, with ``inst/``), generated only when missing or different.

    Default folder: ``$TFI2I_CACHE/label_demo_v{DEMO_VERSION}_{classes}c_{H}x{W}``; the folder's
    ``label_demo.json`` decides whether it is current. ``**kw``: ``num_train``, ``num_val``, ``seed``.
    """
    unknown = set(kw) - {"num_train", "num_val", "seed"}
    if unknown:
        raise TypeError(f"ensure_label_demo got unexpected arguments: {sorted(unknown)}")
    h, w = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if root is None:
        root = _cache_dir() / f"label_demo_v{DEMO_VERSION}_{int(num_classes)}c_{h}x{w}"
    root = Path(root)
    args = {"num_train": 16, "num_val": 4, "seed": 0, **kw}
    want = {"version": DEMO_VERSION, "num_train": int(args["num_train"]), "num_val": int(args["num_val"]),
            "size": [h, w], "num_classes": int(num_classes), "instances": True, "seed": int(args["seed"])}
    return _ensure(root, "label_demo.json", want,
                   lambda: make_label_demo(root, size=(h, w), num_classes=num_classes, instances=True, **args))


# --------------------------------------------------------------------------- face demo (CelebAMask-HQ layout)

#: Bump when the generated face images change, so cached copies are regenerated.
FACE_DEMO_VERSION = 1
#: The layouts :func:`make_face_demo` writes: part masks (the release's) or already merged label maps.
FACE_LAYOUTS = ("celebamask", "celebamask-merged")
_FACE_MARKER = "face_demo.json"
_FACE_SPLITS = (("train", "0", 1), ("val", "1", 162771), ("test", "2", 182638))  # name, CelebA code, first file
#: Optional parts: (name, probability); example ``k`` of a split always has part ``j`` when ``k % 5 == j``.
_ACCESSORIES = (("eye_g", 0.2), ("hat", 0.15), ("ear_r", 0.25), ("neck_l", 0.2), ("mouth", 0.4))
_SKIN_TONES = np.array([(241, 194, 167), (224, 172, 140), (198, 134, 96), (170, 110, 80), (141, 85, 54)], np.float32)
_HAIR_COLOURS = np.array([(25, 20, 18), (70, 45, 30), (120, 80, 45), (200, 165, 100), (150, 60, 30),
                          (160, 160, 160)], np.float32)


def _field(rng: np.random.Generator, h: int, w: int, cell_y: int, cell_x: int) -> np.ndarray:
    """Smooth value noise ``float32 [h, w]`` (about zero mean, unit std), cells of ``cell_y x cell_x`` pixels."""
    gy, gx = h // max(1, cell_y) + 2, w // max(1, cell_x) + 2
    grid = rng.standard_normal((gy, gx)).astype(np.float32)
    big = cv2.resize(grid, (gx * max(1, cell_x), gy * max(1, cell_y)), interpolation=cv2.INTER_CUBIC)
    return big[:h, :w]


def _face_parts(rng: np.random.Generator, h: int, w: int, k: int) -> dict[str, np.ndarray]:
    """The part masks of one synthetic face at ``h x w``: ``{part: uint8 [h, w] in {0, 1}}``, only drawn parts.

    A face parser's shapes, each drawn on its own as an annotator would (parts
    overlap; the merge order of :data:`tfi2i.data.celebamask.PARTS` decides):
    a tilted skin ellipse, ears, eyes, brows, nose, lips (open mouth between
    them), hair around and above the face (short or long), neck, shoulders in
    cloth; accessories (glasses, hat, earrings, necklace, open mouth) are
    optional (:data:`_ACCESSORIES`).
    """
    s = min(h, w)
    cx, cy = w * 0.5 + rng.uniform(-0.05, 0.05) * w, h * 0.44 + rng.uniform(-0.03, 0.03) * h
    rx = s * rng.uniform(0.16, 0.2)
    ry = rx * rng.uniform(1.2, 1.35)
    tilt = float(rng.uniform(-8, 8))
    ca, sa = np.cos(np.radians(tilt)), np.sin(np.radians(tilt))

    def pt(u: float, v: float) -> tuple[int, int]:
        """Face coordinates (units of rx, ry; tilted) -> pixel (x, y)."""
        x, y = u * rx, v * ry
        return int(round(cx + x * ca - y * sa)), int(round(cy + x * sa + y * ca))

    def ax(a: float, b: float) -> tuple[int, int]:
        return max(1, int(round(a * rx))), max(1, int(round(b * ry)))

    def blank() -> np.ndarray:
        return np.zeros((h, w), np.uint8)

    has = {name: bool(rng.random() < p or k % 5 == j) for j, (name, p) in enumerate(_ACCESSORIES)}
    parts: dict[str, np.ndarray] = {}
    m = blank()
    cv2.ellipse(m, pt(0, 0), ax(1, 1), tilt, 0, 360, 1, -1)
    parts["skin"] = m
    m = blank()
    cv2.fillPoly(m, [np.array([pt(0, -0.18), pt(-0.15, 0.24), pt(0.15, 0.24)], np.int32)], 1)
    cv2.ellipse(m, pt(0, 0.25), ax(0.16, 0.06), tilt, 0, 360, 1, -1)
    parts["nose"] = m
    ew, eh, ev = rng.uniform(0.17, 0.22), rng.uniform(0.07, 0.1), rng.uniform(-0.16, -0.08)
    if has["eye_g"]:
        m = blank()
        t = max(2, int(round(0.06 * rx)))
        for u in (-0.4, 0.4):
            cv2.ellipse(m, pt(u, ev), ax(0.3, 0.17), tilt, 0, 360, 1, t)
        cv2.line(m, pt(-0.1, ev), pt(0.1, ev), 1, t)
        cv2.line(m, pt(-0.7, ev), pt(-1.0, ev - 0.05), 1, t)
        cv2.line(m, pt(0.7, ev), pt(1.0, ev - 0.05), 1, t)
        parts["eye_g"] = m
    for name, u in (("l_eye", -0.4), ("r_eye", 0.4)):
        m = blank()
        cv2.ellipse(m, pt(u, ev), ax(ew, eh), tilt, 0, 360, 1, -1)
        parts[name] = m
    bv, bt = ev - rng.uniform(0.17, 0.24), rng.uniform(0.035, 0.06)
    for name, u, turn in (("l_brow", -0.42, -1), ("r_brow", 0.42, 1)):
        m = blank()
        cv2.ellipse(m, pt(u, bv), ax(0.25, bt), tilt + turn * rng.uniform(2, 10), 0, 360, 1, -1)
        parts[name] = m
    for name, u in (("l_ear", -1.0), ("r_ear", 1.0)):
        m = blank()
        cv2.ellipse(m, pt(u, -0.05), ax(0.15, 0.27), tilt, 0, 360, 1, -1)
        parts[name] = m
    lip_v, gap = rng.uniform(0.48, 0.54), (max(rng.uniform(0.07, 0.11), 4.5 / ry) if has["mouth"] else 0.0)
    if has["mouth"]:
        m = blank()
        cv2.ellipse(m, pt(0, lip_v + gap / 2), ax(0.22, gap / 2 + 0.02), tilt, 0, 360, 1, -1)
        parts["mouth"] = m
    lw = rng.uniform(0.25, 0.33)
    m = blank()
    cv2.ellipse(m, pt(0, lip_v), ax(lw, rng.uniform(0.06, 0.09)), tilt, 180, 360, 1, -1)
    parts["u_lip"] = m
    m = blank()
    cv2.ellipse(m, pt(0, lip_v + gap), ax(lw * 0.92, rng.uniform(0.08, 0.11)), tilt, 0, 180, 1, -1)
    parts["l_lip"] = m
    m = blank()  # hair: a cap around the face that leaves the face free, optionally long at the sides
    cv2.ellipse(m, pt(0, -0.2), ax(rng.uniform(1.12, 1.25), rng.uniform(1.0, 1.12)), tilt, 0, 360, 1, -1)
    face = blank()
    cv2.ellipse(face, pt(0, rng.uniform(0.08, 0.16)), ax(0.97, 0.98), tilt, 0, 360, 1, -1)
    m[face.astype(bool)] = 0
    below = np.array([pt(-3, -0.12), pt(3, -0.12), pt(3, 6), pt(-3, 6)], np.int32)
    cv2.fillPoly(m, [below], 0)  # short hair ends above the ears
    if rng.random() < 0.35:  # long hair falls on the shoulders, behind the front of the ears
        for side in (-1, 1):
            strip = [pt(side * 1.3, -0.2), pt(side * 1.0, -0.2), pt(side * 0.95, 1.45), pt(side * 1.4, 1.45)]
            cv2.fillPoly(m, [np.array(strip, np.int32)], 1)
    parts["hair"] = m
    if has["hat"]:
        m = blank()
        cv2.ellipse(m, pt(0, -0.85), ax(1.25, 0.45), tilt, 180, 360, 1, -1)
        cv2.ellipse(m, pt(0, -0.85), ax(1.45, 0.1), tilt, 0, 360, 1, -1)
        parts["hat"] = m
    if has["ear_r"]:
        m = blank()
        for u in (-1.02, 1.02):
            cv2.circle(m, pt(u, 0.3), max(2, int(round(0.07 * rx))), 1, -1)
        parts["ear_r"] = m
    necklace = blank()
    if has["neck_l"]:
        cv2.ellipse(necklace, pt(0, 0.95), ax(0.42, 0.3), tilt, 20, 160, 1, max(2, int(round(0.06 * rx))))
        parts["neck_l"] = necklace
    m = blank()
    neck = [pt(-0.45, 0.55), pt(0.45, 0.55), (int(cx + 0.55 * rx), int(cy + 1.7 * ry)),
            (int(cx - 0.55 * rx), int(cy + 1.7 * ry))]
    cv2.fillPoly(m, [np.array(neck, np.int32)], 1)
    # an annotator's neck stops at the chin and at the necklace (neck is merged after the face parts and neck_l)
    m[parts["skin"].astype(bool) | necklace.astype(bool)] = 0
    parts["neck"] = m
    m = blank()
    top = cy + ry * rng.uniform(1.3, 1.45)
    cv2.ellipse(m, (int(cx), int(top + 0.9 * ry)), (int(rx * rng.uniform(2.0, 2.6)), int(0.9 * ry)), 0, 180, 360,
                1, -1)
    m[int(top + 0.9 * ry):] = 1
    parts["cloth"] = m
    return {name: mask for name, mask in parts.items() if mask.any()}


def _face_colours(rng: np.random.Generator) -> np.ndarray:
    """Per-class RGB colours ``float32 [19, 3]`` of one face (class order of :data:`tfi2i.data.celebamask.CLASSES`)."""
    from tfi2i.data.celebamask import CLASSES

    skin = _SKIN_TONES[rng.integers(len(_SKIN_TONES))] * rng.uniform(0.93, 1.07)
    hair = _HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))] * rng.uniform(0.85, 1.15)
    iris = np.array([(70, 45, 30), (60, 90, 130), (70, 100, 60)], np.float32)[rng.integers(3)]
    gold = np.array([(212, 175, 55), (192, 192, 200)], np.float32)[rng.integers(2)]
    colours = {
        "background": rng.uniform(40, 230, 3), "skin": skin, "nose": skin * 0.93, "eye_g": (35, 35, 40),
        "l_eye": iris * 0.6 + 90, "r_eye": iris * 0.6 + 90, "l_brow": hair * 0.75, "r_brow": hair * 0.75,
        "l_ear": skin * 0.95, "r_ear": skin * 0.95, "mouth": (95, 35, 40),
        "u_lip": np.array((185, 85, 90)) * rng.uniform(0.8, 1.1),
        "l_lip": np.array((195, 95, 100)) * rng.uniform(0.8, 1.1),
        "hair": hair, "hat": rng.uniform(30, 220, 3), "ear_r": gold, "neck_l": gold, "neck": skin * 0.85,
        "cloth": rng.uniform(20, 230, 3),
    }
    return np.array([colours[c] for c in CLASSES], np.float32)


#: Texture strength per class (fraction of the colour), class order of CLASSES: hair and cloth strongest.
_FACE_TEXTURE = np.array([0.12, 0.05, 0.05, 0.02, 0.08, 0.08, 0.1, 0.1, 0.05, 0.05, 0.05, 0.06, 0.06, 0.25, 0.12,
                          0.05, 0.05, 0.05, 0.15], np.float32)


def _face_photo(rng: np.random.Generator, lab: np.ndarray) -> np.ndarray:
    """Render a "photo" of a face label map ``uint8 [h, w]``: uint8 ``[h, w, 3]`` RGB.

    Per-class colours (:func:`_face_colours`), soft shading towards each
    region's border, isotropic texture noise (hair: vertical streaks), a light
    gradient, blur and sensor noise.
    """
    h, w = lab.shape
    s = min(h, w)
    colours = _face_colours(rng)
    photo = colours[lab]
    # shading: each pixel darkens with the share of other classes around it (a blur of its own region's mask,
    # computed at about 128 pixels: the blur is wide, and at full size it would dominate the run time)
    step = max(1, s // 128)
    small = lab[::step, ::step]
    shade = np.ones((h, w), np.float32)
    for c in np.unique(lab):
        blur = cv2.GaussianBlur((small == c).astype(np.float32), (0, 0), max(1.0, s * 0.02 / step))
        shade = np.where(lab == c, cv2.resize(blur, (w, h), interpolation=cv2.INTER_LINEAR), shade)
    photo *= (0.78 + 0.22 * shade)[..., None]
    iso = 0.6 * _field(rng, h, w, max(2, s // 64), max(2, s // 64)) + 0.4 * _field(rng, h, w, 2, 2)
    streaks = 0.7 * _field(rng, h, w, max(4, s // 8), 2) + 0.3 * _field(rng, h, w, max(2, s // 32), 1)
    hair = lab == 13
    texture = np.where(hair, streaks, iso)
    photo *= (1.0 + _FACE_TEXTURE[lab] * texture)[..., None]
    yy = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    photo *= 1.05 - 0.12 * yy * rng.uniform(0.5, 1.0)
    photo = cv2.GaussianBlur(photo, (3, 3), 0.8)
    photo += 2.0 * rng.standard_normal(photo.shape).astype(np.float32)
    return np.clip(np.rint(photo), 0, 255).astype(np.uint8)


def _face_example(seed: int, split_id: int, k: int, size: tuple[int, int]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One example: (``{part: uint8 [h, w] mask in {0, 255}}`` at the mask size, photo uint8 ``[2h, 2w, 3]`` RGB).

    Drawn at the photo's size; each part mask is then reduced to the mask size
    (``INTER_AREA``, > 127), as the release's 512x512 masks of 1024x1024 photos.
    """
    from tfi2i.data.celebamask import PARTS, merge_masks

    h, w = size
    rng = np.random.default_rng([FACE_DEMO_VERSION, 202, int(seed), split_id, k])
    big = _face_parts(rng, 2 * h, 2 * w, k)
    lab_big = merge_masks([(i + 1, big[p].astype(bool)) for i, p in enumerate(PARTS) if p in big])
    photo = _face_photo(rng, lab_big)
    small = {}
    for p, m in big.items():
        reduced = cv2.resize(m * np.uint8(255), (w, h), interpolation=cv2.INTER_AREA) > 127
        if reduced.any():
            small[p] = np.where(reduced, 255, 0).astype(np.uint8)
    return small, photo


def _face_params(num_train: int, num_val: int, num_test: int, size: tuple[int, int], seed: int, layout: str) -> dict:
    return {"version": FACE_DEMO_VERSION, "num_train": int(num_train), "num_val": int(num_val),
            "num_test": int(num_test), "size": [int(size[0]), int(size[1])], "seed": int(seed), "layout": layout}


def make_face_demo(root: PathLike, num_train: int = 16, num_val: int = 4, size: tuple[int, int] = (256, 256),
                   seed: int = 0, layout: str = "celebamask", *, num_test: int = 0) -> Path:
    """Write synthetic face-like data in the CelebAMask-HQ layout, replacing ``root``.

    Layout (:mod:`tfi2i.data.celebamask`; ``H x W`` = ``size``, the mask size)::

        root/CelebA-HQ-img/<id>.jpg                       photo, RGB JPEG (quality 95), 2H x 2W
        root/CelebAMask-HQ-mask-anno/<id // 2000>/<id:05d>_<part>.png
                                                          part masks, 1-channel 0/255, H x W; only
                                                          the parts an example has
        root/CelebAMask-HQ-mask/<id>.png                  instead of the part masks with
                                                          layout="celebamask-merged": merged ids 0..18
        root/CelebA-HQ-to-CelebA-mapping.txt              "idx orig_idx orig_file", as the release's
        root/list_eval_partition.txt                      "<orig_file> <0|1|2>", as CelebA's
        root/face_demo.json                               the generation parameters

    Ids interleave the splits (train 0, val 0, test 0, train 1, ...), so a
    split is not an id range; the CelebA file numbers lie in CelebA's ranges
    of each split, so the split is the same with or without the partition
    file. Every face has per-example geometry (position, size, tilt, eyes,
    brows, lips, short or long hair) and colours (skin tone, hair, clothes,
    background); glasses, hat, earrings, necklace and an open mouth are
    optional, and example ``k`` of a split always has the ``k % 5``-th of them,
    so any 5 examples of a split hold all 19 classes. The photos are rendered
    from the label map (per-class colours, shading, texture noise).
    Deterministic: byte-identical for identical arguments; the images of
    example ``k`` of a split do not depend on the counts (its id does).
    Open it with::

        DataConfig(path=str(root), x_kind="labels", num_classes=19, crop_size=H, load_size=H)

    Args:
        root: destination folder (created with its parents).
        num_train, num_val, num_test: examples per split (train >= 1, others >= 0).
        size: ``(H, W)`` of the label maps (each >= 32); photos are twice that.
        seed: RNG seed.
        layout: ``"celebamask"`` (part masks) or ``"celebamask-merged"`` (merged label maps).

    Returns:
        ``root`` as a :class:`pathlib.Path`.

    Raises:
        ValueError: invalid counts, size or layout.
    """
    from tfi2i.data import celebamask as cm

    h, w = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
    counts = (int(num_train), int(num_val), int(num_test))
    if counts[0] < 1 or min(counts) < 0 or max(counts) > 19000:
        raise ValueError(f"make_face_demo needs 1 <= num_train and 0 <= num_val, num_test (each <= 19000), got "
                         f"{num_train}, {num_val}, {num_test}")
    if h < 32 or w < 32:
        raise ValueError(f"make_face_demo needs a size of at least 32x32 (height, width), got {size}")
    if layout not in FACE_LAYOUTS:
        raise ValueError(f"make_face_demo: layout {layout!r} is not one of {', '.join(FACE_LAYOUTS)}")
    order = [(j, k) for k in range(max(counts)) for j in range(3) if k < counts[j]]
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        (tmp / cm.PHOTO_DIR).mkdir()
        mapping, partition = ["idx         orig_idx        orig_file"], []
        for idx, (j, k) in enumerate(order):
            masks, photo = _face_example(seed, j, k, (h, w))
            ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(photo[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])
            if not ok:
                raise OSError(f"cannot encode demo photo {idx}.jpg")
            (tmp / cm.PHOTO_DIR / f"{idx}.jpg").write_bytes(buf.tobytes())
            if layout == "celebamask":
                folder = tmp / cm.PARTS_DIR / str(idx // 2000)
                folder.mkdir(parents=True, exist_ok=True)
                for part, m in masks.items():
                    _png(folder / f"{idx:05d}_{part}.png", m)
            else:
                (tmp / cm.MERGED_DIR).mkdir(exist_ok=True)
                merged = cm.merge_masks([(i + 1, masks[p] > 127) for i, p in enumerate(cm.PARTS) if p in masks])
                _png(tmp / cm.MERGED_DIR / f"{idx}.png", merged)
            number = _FACE_SPLITS[j][2] + k
            mapping.append(f"{idx:<12}{number - 1:<16}{number:06d}.jpg")
            partition.append((number, f"{number:06d}.jpg {_FACE_SPLITS[j][1]}"))
        (tmp / cm.MAPPING_FILE).write_text("\n".join(mapping) + "\n", encoding="utf-8")
        (tmp / cm.PARTITION_FILE).write_text("\n".join(line for _, line in sorted(partition)) + "\n",
                                             encoding="utf-8")
        params = _face_params(*counts, (h, w), seed, layout)
        (tmp / _FACE_MARKER).write_text(json.dumps(params, sort_keys=True) + "\n", encoding="utf-8")
        _replace_folder(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def ensure_face_demo(size: tuple[int, int] = (256, 256), root: PathLike | None = None, **kw) -> Path:
    """A face demo set (:func:`make_face_demo`), generated only when missing or different.

    Default folder: ``$TFI2I_CACHE/face_demo_v{FACE_DEMO_VERSION}_{H}x{W}`` (``_merged`` appended for
    ``layout="celebamask-merged"``); the folder's ``face_demo.json`` decides whether it is current.
    ``**kw``: ``num_train`` (16), ``num_val`` (4), ``num_test`` (0), ``seed`` (0), ``layout``.
    """
    unknown = set(kw) - {"num_train", "num_val", "num_test", "seed", "layout"}
    if unknown:
        raise TypeError(f"ensure_face_demo got unexpected arguments: {sorted(unknown)}")
    h, w = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
    args = {"num_train": 16, "num_val": 4, "num_test": 0, "seed": 0, "layout": "celebamask", **kw}
    if root is None:
        tail = "_merged" if args["layout"] == "celebamask-merged" else ""
        root = _cache_dir() / f"face_demo_v{FACE_DEMO_VERSION}_{h}x{w}{tail}"
    root = Path(root)
    want = _face_params(args["num_train"], args["num_val"], args["num_test"], (h, w), args["seed"], args["layout"])
    num_test = args.pop("num_test")
    return _ensure(root, _FACE_MARKER, want, lambda: make_face_demo(root, size=(h, w), num_test=num_test, **args))
