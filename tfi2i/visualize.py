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
