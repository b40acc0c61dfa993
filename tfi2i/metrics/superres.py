"""Super-resolution benchmark protocol (PAN Table 2: PSNR / SSIM, x4; on Set5, our choice).

PAN's Table 2 reports x4 PSNR / SSIM after training on MS-COCO but names no
test set (neither text of the paper does); we use Set5, the usual x4
benchmark, so our numbers and the paper's are not measured on the same images.

For every high-resolution image of a folder (`evaluate_superres`):

1. mod-crop to a multiple of the factor (the usual SR protocol), keep it as
   the reference ``HR`` (8-bit RGB);
2. the input is `tfi2i.data.degrade.superres_input`: bicubic downsampling by
   the factor (antialiased) and bicubic upsampling back to full size, i.e.
   exactly the "bicubic" baseline image;
3. the model runs on the full image (a `tfi2i.translate.Translator` pads
   it to the generator's size multiple and crops back) and its output is
   rounded to 8 bits, as a saved result would be;
4. PSNR and SSIM of model and bicubic against ``HR`` in two conventions:
   ``rgb`` (all three channels, the whole image; what pix2pix-style papers
   usually report) and ``y`` (the luma of MATLAB's ``rgb2ycbcr``,
   ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` on [0, 1] RGB, with
   ``factor`` border pixels shaved: the SR literature's convention). PAN
   does not say which it used; both are reported, bicubic beside each.
"""

import os

import numpy as np
import tensorflow as tf

from tfi2i.metrics.image import psnr, ssim

#: MATLAB rgb2ycbcr luma weights (for RGB on [0, 1]; result on [0, 255]).
_Y_WEIGHTS = (65.481, 128.553, 24.966)


def luma(rgb01):
    """``[B, H, W, 3]`` RGB on [0, 1] -> ``[B, H, W, 1]`` MATLAB ``rgb2ycbcr`` Y on [0, 1] (16..235 / 255)."""
    w = tf.constant(_Y_WEIGHTS, tf.float32)
    return (16.0 + tf.reduce_sum(tf.cast(rgb01, tf.float32) * w, axis=-1, keepdims=True)) / 255.0


def _scores(pred01, hr01, shave):
    yp, yh = luma(pred01), luma(hr01)
    if shave:
        yp, yh = yp[:, shave:-shave, shave:-shave], yh[:, shave:-shave, shave:-shave]
    return {
        "psnr_rgb": float(psnr(pred01, hr01)[0]), "ssim_rgb": float(ssim(pred01, hr01)[0]),
        "psnr_y": float(psnr(yp, yh)[0]), "ssim_y": float(ssim(yp, yh)[0]),
    }


def evaluate_superres(translate, folder, factor=4):
    """PSNR / SSIM of `translate` and of bicubic upsampling on every image of `folder`.

    Args:
      translate: ``[1, H, W, 3]`` in [-1, 1] (any H, W) -> same size, e.g.
        ``tfi2i.translate.load_translator(run_dir)``.
      folder: high-resolution images (we use Set5; the paper names no test set); any sizes.
      factor: the scale factor (4 for PAN Table 2).

    Returns:
      ``{"images": [{"name", "size", "model": {...}, "bicubic": {...}}, ...],
      "model": means, "bicubic": means, "factor", "protocol"}``.
    """
    from tfi2i.data.degrade import superres_input
    from tfi2i.data.images import read_image
    from tfi2i.data.sources import list_images

    files = list_images(folder)
    if not files:
        raise ValueError(f"{folder}: no images to evaluate super-resolution on")
    rows = []
    for path in files:
        hr = read_image(path)
        h, w = (hr.shape[0] // factor) * factor, (hr.shape[1] // factor) * factor
        if min(h, w) < 11 + 2 * factor:
            raise ValueError(f"{path}: {hr.shape[1]}x{hr.shape[0]} is too small for x{factor} evaluation")
        hr = hr[:h, :w]
        y = tf.constant(hr[None], tf.float32) / 127.5 - 1.0
        x = superres_input(y, factor)
        pred = tf.constant(np.asarray(translate(x)), tf.float32)
        to01 = lambda t: tf.round((tf.clip_by_value(t, -1.0, 1.0) + 1.0) * 127.5) / 255.0  # noqa: E731  8-bit
        hr01 = tf.constant(hr[None], tf.float32) / 255.0
        rows.append({"name": os.path.basename(str(path)), "size": [int(w), int(h)],
                     "model": _scores(to01(pred), hr01, factor), "bicubic": _scores(to01(x), hr01, factor)})
    mean = lambda key: {m: float(np.mean([r[key][m] for r in rows])) for m in rows[0][key]}  # noqa: E731
    return {"factor": factor, "num_images": len(rows), "model": mean("model"), "bicubic": mean("bicubic"),
            "images": rows,
            "protocol": f"mod-crop {factor}; rgb: all channels, whole image; y: MATLAB rgb2ycbcr luma, {factor}-pixel shave"}
