"""Sample grids and loss-curve plots written as PNG (atomically)."""

import json
import os
import tempfile

import cv2
import numpy as np


def to_uint8_image(image):
    """float ``[H, W, C]`` in [-1, 1] -> uint8 ``[H, W, 3]`` (1 channel is repeated, extra channels dropped)."""
    image = np.asarray(image, dtype=np.float32)
    image = np.clip(np.round((image + 1.0) * 127.5), 0, 255).astype(np.uint8)
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return image[..., :3]


def label_palette(num_classes):
    """A fixed colour per class id, float32 ``[num_classes, 3]`` in [-1, 1] (id 0 black; the PASCAL VOC bit pattern)."""
    colours = np.zeros((num_classes, 3), np.float32)
    for i in range(num_classes):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colours[i] = (r, g, b)
    return colours / 127.5 - 1.0


def show_input(spec, value):
    """A generator input as a picture for a sample grid, float ``[B, H, W, 3]`` in [-1, 1].

    ``labels``: ids (int ``[B, H, W, 1]``) or one-hot maps coloured with
    :func:`label_palette`; ``instances``: the boundary map in grey (1 white);
    ``rgb`` / ``style``: the image (1 channel repeated).
    """
    import tensorflow as tf

    if spec.kind == "labels":
        ids = tf.cast(value, tf.int32)[..., 0] if (value.dtype.is_integer or value.shape[-1] == 1) else tf.argmax(
            value, axis=-1, output_type=tf.int32)
        return tf.gather(tf.constant(label_palette(spec.num_classes)), tf.clip_by_value(ids, 0, spec.num_classes - 1))
    value = tf.cast(value, tf.float32)
    if spec.kind == "instances":
        value = value * 2.0 - 1.0
    return tf.repeat(value, 3, axis=-1) if value.shape[-1] == 1 else value[..., :3]


def image_grid(rows, pad=2):
    """Tiles ``rows`` (a list of rows, each a list of ``[H, W, C]`` arrays in [-1, 1]) into one uint8 RGB image."""
    tiles = [[to_uint8_image(t) for t in row] for row in rows]
    h = max(t.shape[0] for row in tiles for t in row)
    w = max(t.shape[1] for row in tiles for t in row)
    cols = max(len(row) for row in tiles)
    grid = np.full((len(tiles) * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            top, left = pad + r * (h + pad), pad + c * (w + pad)
            grid[top : top + tile.shape[0], left : left + tile.shape[1]] = tile
    return grid


def save_png(path, rgb):
    """Writes a uint8 RGB image to ``path`` atomically (temp file + rename)."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    if not ok:
        raise IOError(f"could not encode PNG for {path}")
    atomic_write_bytes(path, buf.tobytes())


def atomic_write_bytes(path, data: bytes):
    """Writes ``data`` to ``path`` so that readers see the old file or the new one, never half of one."""
    directory = os.path.dirname(os.fspath(path)) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def new_figure(figsize):
    """A matplotlib Figure on its own Agg canvas: no pyplot, so the process's backend (a notebook's) is untouched."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def plot_loss_curves(metrics_jsonl, out_png):
    """Plots every loss term of a run's ``metrics.jsonl`` against the step (one panel per term)."""

    records = [json.loads(line) for line in open(metrics_jsonl) if line.strip()]
    records = [r for r in records if r.get("split") == "train"]
    if not records:
        return None
    skip = {"step", "epoch", "split", "lr", "images_per_sec", "time"}
    terms = [k for k in records[-1] if k not in skip]
    fig = new_figure((3 * len(terms), 2.6))
    axes = fig.subplots(1, len(terms), squeeze=False)
    steps = [r["step"] for r in records]
    for ax, term in zip(axes[0], terms):
        ax.plot(steps, [r.get(term, np.nan) for r in records])
        ax.set_title(term)
        ax.set_xlabel("step")
    fig.tight_layout()
    tmp = os.fspath(out_png) + ".tmp.png"
    fig.savefig(tmp, dpi=80)
    os.replace(tmp, out_png)
    return out_png
