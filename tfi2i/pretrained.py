"""Pretrained ``keras.applications`` backbones with one clear "weights not available offline" error.

Three parts of the package need ImageNet weights that Keras downloads on first
use: InceptionV3 for FID/KID (:mod:`tfi2i.metrics.fid`), VGG16 for the FCN-8s
segmenter (:mod:`tfi2i.segmenter`) and VGG19 for pix2pixHD's perceptual loss
(:mod:`tfi2i.networks.vgg`). They all go through :func:`build_application`:

* ``weights="imagenet"``: the file Keras caches as
  ``$KERAS_HOME/models/<file>`` (default ``~/.keras/models``) is fetched with
  ``keras.utils.get_file`` (md5-checked; no network call when it is already
  cached). ``$KERAS_HOME`` is read at call time, not at import.
* ``weights=None`` (or the string ``"none"``): random weights (tests).
* any other string / path: a local weights file in the Keras layout
  (``.h5`` as Keras ships it, or a ``.weights.h5`` written by ``save_weights``).

When the file can be had neither from the cache nor from the network, or the
local path does not exist, :class:`WeightsUnavailableError` names the model,
the file Keras looks for, the folder to copy it into and how to pass a path
instead (``how_to_pass``: e.g. ``--weights PATH`` for a CLI).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = [
    "KERAS_WEIGHTS",
    "KerasWeights",
    "WeightsUnavailableError",
    "build_application",
    "keras_home",
    "resolve_weights",
]

_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclass(frozen=True)
class KerasWeights:
    """Where Keras gets one application's ImageNet weights without the top (classifier) layers."""

    file: str
    """File name in ``$KERAS_HOME/models``."""
    url: str
    md5: str


KERAS_WEIGHTS: dict[str, KerasWeights] = {
    # the same file names, URLs and hashes as keras/src/applications/{inception_v3,vgg16,vgg19}.py (no top)
    "InceptionV3": KerasWeights(
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        _BASE + "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "bcbd6486424b2319ff4ef7d526e38f63",
    ),
    "VGG16": KerasWeights(
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        _BASE + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "6d6bbae143d832006294945121d1f1fc",
    ),
    "VGG19": KerasWeights(
        "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        _BASE + "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "253f8cb515780f3b799900260a226db6",
    ),
}
"""``keras.applications`` name -> its no-top ImageNet weights file."""


class WeightsUnavailableError(OSError):
    """The requested pretrained weights are neither cached nor downloadable
    (e.g. offline), or the local file does not exist; the message says how to provide them."""


def keras_home() -> str:
    """``$KERAS_HOME``, else ``~/.keras`` (``/tmp/.keras`` if home is read-only, as Keras does),
    resolved at call time (Keras itself reads the variable once, at import)."""
    env = os.environ.get("KERAS_HOME")
    if env:
        return env
    home = os.path.expanduser("~")
    if not os.access(home, os.W_OK):
        home = "/tmp"
    return os.path.join(home, ".keras")


def _spec(model: str) -> KerasWeights:
    try:
        return KERAS_WEIGHTS[model]
    except KeyError:
        raise ValueError(f"no weights file known for {model!r}; known: {sorted(KERAS_WEIGHTS)}") from None


def how_to_provide(model: str, how_to_pass: str | None = None) -> str:
    """The "provide the file offline" instructions of :class:`WeightsUnavailableError`."""
    spec = _spec(model)
    how_to_pass = how_to_pass or f"weights='/path/to/{spec.file}'"
    cache = os.path.join(keras_home(), "models")
    return (
        "Provide the file offline in one of two ways:\n"
        f"  * download {spec.url} (md5 {spec.md5}) on a machine with network access and copy "
        f"{spec.file} into {cache}/ (Keras' cache: $KERAS_HOME/models, default ~/.keras/models), or\n"
        f"  * pass a local path: {how_to_pass}."
    )


def _is_none(weights) -> bool:
    return weights is None or (isinstance(weights, str) and weights.lower() == "none")


def _is_imagenet(weights) -> bool:
    return isinstance(weights, str) and weights.lower() == "imagenet"


def resolve_weights(model: str, weights="imagenet", *, how_to_pass: str | None = None) -> str | None:
    """Map ``weights`` to a local file (or ``None`` for random weights).

    Args:
      model: a key of :data:`KERAS_WEIGHTS` (``"InceptionV3"``, ``"VGG16"``, ``"VGG19"``).
      weights: ``"imagenet"``, ``None`` / ``"none"``, or a local path.
      how_to_pass: how the caller's user passes a path (``"--weights PATH"``), for the error.

    Raises:
      WeightsUnavailableError: ``"imagenet"`` is not cached and cannot be
        downloaded, or the local path does not exist.
    """
    if _is_none(weights):
        return None
    spec = _spec(model)
    if _is_imagenet(weights):
        import keras

        home = keras_home()
        try:
            return keras.utils.get_file(
                spec.file, spec.url, cache_subdir="models", file_hash=spec.md5, cache_dir=home
            )
        except Exception as err:  # Keras wraps URLError/HTTPError in a plain Exception
            raise WeightsUnavailableError(
                f"cannot get the ImageNet {model} weights: {spec.file} is not cached in "
                f"{os.path.join(home, 'models')} and could not be downloaded "
                f"({type(err).__name__}: {err}).\n" + how_to_provide(model, how_to_pass)
            ) from err
    path = os.path.expanduser(os.fspath(weights))
    if not os.path.isfile(path):
        raise WeightsUnavailableError(
            f"{model} weights file not found: {path!r} (weights must be 'imagenet', None / 'none' "
            f"or the path of {spec.file} or a file in its layout).\n" + how_to_provide(model, how_to_pass)
        )
    return path


def build_application(model: str, weights="imagenet", *, how_to_pass: str | None = None, **kwargs):
    """``keras.applications.<model>(include_top=False, weights=<resolved>, **kwargs)``.

    Args:
      model: ``"InceptionV3"``, ``"VGG16"`` or ``"VGG19"`` (:data:`KERAS_WEIGHTS`).
      weights: ``"imagenet"``, ``None`` / ``"none"`` or a local weights path (see the module docstring).
      how_to_pass: for the offline error, how a path is passed (default ``weights='/path/to/<file>'``).
      **kwargs: ``input_shape``, ``pooling``, ... for the application constructor.

    Raises:
      WeightsUnavailableError: see :func:`resolve_weights`; also when the
        constructor itself fails to read the weights with an ``OSError``.
      ValueError: the file exists but does not fit the network (wrong layout or model).
    """
    import keras

    path = resolve_weights(model, weights, how_to_pass=how_to_pass)
    spec = _spec(model)
    try:
        return getattr(keras.applications, model)(include_top=False, weights=path, **kwargs)
    except Exception as err:  # noqa: BLE001 - file errors become one clear message
        if path is None:
            raise
        if isinstance(err, OSError):
            raise WeightsUnavailableError(
                f"cannot read the {model} weights from {path!r} ({type(err).__name__}: {err}).\n"
                + how_to_provide(model, how_to_pass)
            ) from err
        raise ValueError(
            f"could not load {model} (no top) weights from {path!r} ({type(err).__name__}: {err}); "
            f"expected {spec.file} or a file in its layout"
        ) from err
