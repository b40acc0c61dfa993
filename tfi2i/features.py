"""pix2pixHD's instance features at test time: encode the training set, cluster, sample (NVIDIA pix2pixHD).

pix2pixHD (Wang et al. 2018, Sec. 3.4) feeds its generator, next to the label
map, a low-dimensional feature map that is constant over each instance. In
training the encoder E (`tfi2i.networks.feature_encoder`) computes it from the
real photo. Afterwards NVIDIA's ``encode_features.py`` runs E over the training
set, collects one feature per instance, and clusters each semantic class's
features with k-means; at inference (``pix2pixHD_model.inference``) the map is
either E applied to a real photo (``--use_encoded_image``: `encoded_features`)
or, per instance, a randomly chosen cluster centre of its class
(``sample_features``: `sample_features`).

Mapping to NVIDIA's code:

* `encoded_features` = ``netE.forward(image, inst)`` (encoder + instance average).
* `instance_features` = ``Pix2PixHDModel.encode_features`` (one row per instance).
* `encode_dataset` = ``encode_features.py``'s loop over the training set.
* `cluster_features` = ``encode_features.py``'s KMeans step.
* `save_clusters` / `load_clusters` (and `save_rows` / `load_rows`) replace the
  pickled ``np.save(dict)`` files (``features.npy`` and
  ``features_clustered_%03d.npy``) by ``.npz`` archives, written atomically and
  loaded without pickle.
* `sample_features` = ``Pix2PixHDModel.sample_features`` (NumPy);
  `sample_cluster_features` on `cluster_table`'s arrays is the TF version the
  model uses (graph-compatible, so exports sample too; its draws differ from
  `sample_features`' for the same seed).

Instance ids follow Cityscapes (and NVIDIA): an id ``i < 1000`` is a class id
with no instances (``label = i``), otherwise ``label = i // 1000`` (e.g.
``26001`` is the second car, class 26).
"""

from __future__ import annotations

import io
import os
import re
import zipfile

import numpy as np

from tfi2i.visualize import atomic_write_bytes

BLOCK_NUM = 32  # NVIDIA encode_features: area ratio denominator h * w // 32


class FeatureFileError(ValueError):
    """A features / clusters file is missing or malformed."""


def label_of(instance_id):
    """NVIDIA's ``label = i if i < 1000 else i // 1000`` (ints or integer arrays)."""
    instance_id = np.asarray(instance_id)
    out = np.where(instance_id < 1000, instance_id, instance_id // 1000)
    return int(out) if out.ndim == 0 else out


def encoded_features(encoder, image, ids, training=False):
    """NVIDIA ``netE.forward(image, inst)``: E's per-pixel features averaged over each instance.

    What the generator sees in training and at inference with
    ``--use_encoded_image``. ``image``: float ``[B, H, W, 3]`` in [-1, 1];
    ``ids``: int ``[B, H, W, 1]``. Returns a float32 tensor ``[B, H, W, feat_num]``.
    """
    from tfi2i.networks.feature_encoder import instance_average

    return instance_average(encoder({"image": image}, training=training), ids)


def _as_numpy(x):
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


def _ids_2d(ids):
    ids = _as_numpy(ids)
    if ids.ndim == 4:
        if ids.shape[-1] != 1:
            raise ValueError(f"instance ids must be [B, H, W, 1], got shape {ids.shape}")
        ids = ids[..., 0]
    if ids.ndim != 3:
        raise ValueError(f"instance ids must be [B, H, W, 1], got shape {ids.shape}")
    return ids.astype(np.int64)


def instance_features(features, ids, num_classes, block_num=BLOCK_NUM):
    """One feature row per instance (NVIDIA ``Pix2PixHDModel.encode_features``).

    For every instance id ``i`` of the map (sorted, as ``np.unique``), with
    ``label = i if i < 1000 else i // 1000`` and ``num`` its pixel count, the row
    is the feature at the instance's middle pixel in raster order
    (``(inst == i).nonzero()[num // 2]``) followed by the area ratio ``num / (h
    * w // block_num)``. ``features`` should be instance-averaged
    (`encoded_features`), as NVIDIA's are, so the middle pixel holds the
    instance's mean.

    Args:
      features: float ``[B, H, W, F]`` (array or tensor).
      ids: int ``[B, H, W, 1]``.
      num_classes: NVIDIA ``label_nc``; every label in ``range(num_classes)``
        gets an entry (empty ``[0, F + 1]`` when absent).
      block_num: the area ratio's denominator divisor (NVIDIA hard-codes 32).

    Returns:
      ``{label: float64 array [n, F + 1]}``.

    Deviations: NVIDIA runs batch 1; a batch of B is handled here as B
    separate maps (same rows as B runs of batch 1). A label ``>= num_classes``
    raises ``ValueError`` (NVIDIA: ``KeyError``).
    """
    features = _as_numpy(features).astype(np.float64)
    ids = _ids_2d(ids)
    if features.ndim != 4 or features.shape[:3] != ids.shape:
        raise ValueError(f"features {features.shape} and ids {ids.shape} must be [B, H, W, F] and [B, H, W, 1]")
    feat_num = features.shape[-1]
    _, h, w = ids.shape
    denominator = h * w // block_num
    if denominator <= 0:
        raise ValueError(f"map of {h}x{w} pixels is smaller than block_num={block_num}")
    rows = {label: [] for label in range(num_classes)}
    for b in range(ids.shape[0]):
        flat_ids = ids[b].reshape(-1)
        flat_features = features[b].reshape(-1, feat_num)
        for i in np.unique(flat_ids):
            label = label_of(i)
            if not 0 <= label < num_classes:
                raise ValueError(f"instance id {i} has label {label}, outside range({num_classes})")
            where = np.flatnonzero(flat_ids == i)
            num = where.size
            row = np.empty(feat_num + 1)
            row[:feat_num] = flat_features[where[num // 2]]
            row[feat_num] = num / denominator
            rows[label].append(row)
    return {label: (np.stack(r) if r else np.zeros((0, feat_num + 1))) for label, r in rows.items()}


def merge_rows(total, rows):
    """Appends ``rows`` (``{label: [n, F + 1]}``) to ``total`` in place (``np.append`` of encode_features.py)."""
    for label, r in rows.items():
        total[label] = np.concatenate([total[label], r], axis=0) if label in total else r
    return total


def encode_dataset(encoder, batches, num_classes, block_num=BLOCK_NUM):
    """NVIDIA ``encode_features.py``'s loop: `instance_features` of E over a data set.

    Args:
      encoder: the trained `tfi2i.networks.feature_encoder` model.
      batches: iterable of dicts with ``y`` (the photo, float ``[B, H, W, 3]``
        in [-1, 1]) and ``instance_ids`` (int32 ``[B, H, W, 1]``). NVIDIA uses
        the training set with batch 1, serial order and no flip; pass such a
        pipeline (any batch size gives the same rows with instance norm).
      num_classes: NVIDIA ``label_nc``.

    Returns:
      ``{label: float64 [n, F + 1]}`` for every label in ``range(num_classes)``.

    Deviation: E runs with ``training=False`` (NVIDIA leaves the model in
    train mode; the same with its default instance norm, which has no running
    statistics).
    """
    total = {}
    for batch in batches:
        feats = encoded_features(encoder, batch["y"], batch["instance_ids"], training=False)
        merge_rows(total, instance_features(feats, batch["instance_ids"], num_classes, block_num))
    for label in range(num_classes):
        total.setdefault(label, np.zeros((0, int(encoder.output_shape[-1]) + 1)))
    return total


def cluster_features(rows_by_label, n_clusters=10, min_area=0.5):
    """encode_features.py's k-means step: per label, cluster centres of its large instances' features.

    Rows with area ratio ``> min_area`` (NVIDIA: 0.5) are kept, the ratio
    column dropped; a label with ``n`` such rows gets ``KMeans(n_clusters=min(n,
    n_clusters), random_state=0)``'s centres, a label with none gets no entry.

    Uses scikit-learn's ``KMeans`` as NVIDIA does, with ``n_init=10`` set
    explicitly: it was the default of the scikit-learn NVIDIA ran (newer ones
    default to ``"auto"``, a single k-means++ start).

    Returns:
      ``{label: float32 centres [k, F]}``.
    """
    from sklearn.cluster import KMeans

    centers = {}
    for label, rows in rows_by_label.items():
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] < 2:
            raise ValueError(f"label {label}: rows must be [n, feat_num + 1], got shape {rows.shape}")
        feat = rows[rows[:, -1] > min_area, :-1]
        if feat.shape[0]:
            k = min(feat.shape[0], n_clusters)
            kmeans = KMeans(n_clusters=k, random_state=0, n_init=10).fit(feat)
            centers[int(label)] = kmeans.cluster_centers_.astype(np.float32)
    return centers


def clusters_filename(n_clusters=10):
    """NVIDIA's ``features_clustered_%03d.npy`` name, as ``.npz``."""
    return "features_clustered_%03d.npz" % n_clusters


_KEY = re.compile(r"label_(\d+)")


def _save(path, arrays, kind):
    buffer = io.BytesIO()
    np.savez(buffer, __kind__=np.array(kind), **{f"label_{int(k)}": np.asarray(v) for k, v in arrays.items()})
    atomic_write_bytes(path, buffer.getvalue())


def _load(path, kind):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FeatureFileError(f"{kind} file '{path}' not found")
    try:
        with np.load(path, allow_pickle=False) as archive:
            data = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise FeatureFileError(f"{kind} file '{path}' is not a readable .npz archive: {e}") from e
    found = str(data.pop("__kind__", ""))
    if found != kind:
        raise FeatureFileError(f"'{path}' is not a {kind} file (found kind {found or 'none'!r})")
    out, width = {}, None
    for name, value in data.items():
        match = _KEY.fullmatch(name)
        if not match:
            raise FeatureFileError(f"{kind} file '{path}': unexpected entry '{name}'")
        bad_width = width is not None and value.ndim == 2 and value.shape[1] != width
        if value.ndim != 2 or not np.issubdtype(value.dtype, np.floating) or bad_width:
            raise FeatureFileError(
                f"{kind} file '{path}': entry '{name}' has shape {value.shape} / dtype {value.dtype}, "
                "expected a float [n, F] array with the same F for every label"
            )
        width = value.shape[1]
        out[int(match.group(1))] = value
    return dict(sorted(out.items()))


def save_clusters(path, clusters):
    """Writes ``{label: centres [k, F]}`` to an ``.npz`` atomically (NVIDIA: ``np.save`` of a pickled dict)."""
    _save(path, clusters, "clusters")


def load_clusters(path):
    """Reads `save_clusters`' file; `FeatureFileError` naming the file when it is missing or malformed."""
    return _load(path, "clusters")


def save_rows(path, rows_by_label):
    """Writes `encode_dataset`'s ``{label: [n, F + 1]}`` (NVIDIA ``features.npy``) atomically."""
    _save(path, rows_by_label, "feature_rows")


def load_rows(path):
    """Reads `save_rows`' file; `FeatureFileError` naming the file when it is missing or malformed."""
    return _load(path, "feature_rows")


def sample_features(ids, clusters, feat_num, seed):
    """NVIDIA ``Pix2PixHDModel.sample_features``: per instance, a random cluster centre of its label.

    For every id ``i`` in the batch (sorted, ``np.unique``) whose label has
    clusters, an index is drawn uniformly from its ``k`` centres and that
    centre fills the pixels with id ``i``. As in NVIDIA the draw is per id over
    the whole batch: an id present in two examples gets the same centre there.

    Args:
      ids: int ``[B, H, W, 1]`` (array or tensor).
      clusters: ``{label: [k, feat_num]}`` (`cluster_features` / `load_clusters`).
      feat_num: feature channels.
      seed: seeds a ``numpy.random.Generator`` (``default_rng``), drawn once
        per id with clusters, in sorted id order: same seed, same map.

    Returns:
      float32 ``[B, H, W, feat_num]``.

    Deviations: NVIDIA uses the global ``np.random.randint`` (unseeded) and an
    uninitialised ``torch.Tensor`` so pixels whose label has no clusters hold
    arbitrary memory; here they are 0.
    """
    ids = _ids_2d(ids)
    rng = np.random.default_rng(seed)
    out = np.zeros(ids.shape + (feat_num,), dtype=np.float32)
    for i in np.unique(ids):
        label = label_of(i)
        centres = clusters.get(label)
        if centres is None:
            continue
        centres = np.asarray(centres)
        if centres.ndim != 2 or centres.shape[1] != feat_num or centres.shape[0] == 0:
            raise ValueError(f"clusters of label {label} have shape {centres.shape}, expected [k >= 1, {feat_num}]")
        out[ids == i] = centres[rng.integers(0, centres.shape[0])]
    return out


# ----------------------------------------------------------------- graph-compatible sampling (the model's)
def cluster_table(clusters, num_classes, feat_num):
    """``{label: [k, F]}`` -> ``(centres float32 [num_classes, K, F], counts int32 [num_classes])``, K = max k.

    Labels without clusters get count 0; a label ``>= num_classes`` is a ``ValueError``.
    The padded table is what `sample_cluster_features` gathers from, so it
    can live in a traced graph (an export) as two constants.
    """
    k_max = max([int(np.asarray(c).shape[0]) for c in clusters.values()] + [1])
    table = np.zeros((num_classes, k_max, feat_num), np.float32)
    counts = np.zeros((num_classes,), np.int32)
    for label, centres in clusters.items():
        centres = np.asarray(centres, np.float32)
        if not 0 <= int(label) < num_classes:
            raise ValueError(f"clusters of label {label}: outside range({num_classes})")
        if centres.ndim != 2 or centres.shape[1] != feat_num or centres.shape[0] == 0:
            raise ValueError(f"clusters of label {label} have shape {centres.shape}, expected [k >= 1, {feat_num}]")
        table[int(label), : centres.shape[0]] = centres
        counts[int(label)] = centres.shape[0]
    return table, counts


def sample_cluster_features(ids, table, counts, seed):
    """`sample_features` in TF ops (graph-compatible, no ``tf.unique``): the model's cluster sampling.

    Every id ``i`` of ``ids`` (int or float ``[B, H, W, 1]``) gets label
    ``i if i < 1000 else i // 1000`` and, when that label has ``k > 0``
    centres, the centre ``floor(u_i * k)`` with ``u_i`` uniform in [0, 1)
    drawn from ``stateless_uniform([max_id + 1], seed=[seed, 0])[i]``: one
    draw per id (the same id in two examples gets the same centre, as in
    NVIDIA), a function of ``(seed, i)`` only. Pixels of labels without
    clusters (or outside the table) are 0 (`sample_features`' deviation).

    Args:
      ids: instance ids ``[B, H, W, 1]`` (>= 0).
      table, counts: `cluster_table`'s arrays (or tensors).
      seed: int or scalar int tensor.

    Returns:
      float32 ``[B, H, W, F]``.
    """
    import tensorflow as tf

    table = tf.convert_to_tensor(table, tf.float32)
    counts = tf.convert_to_tensor(counts, tf.int32)
    ids = tf.cast(tf.round(tf.cast(ids, tf.float64)), tf.int64)[..., 0] if not ids.dtype.is_integer else tf.cast(
        ids[..., 0], tf.int64)
    ids = tf.maximum(ids, 0)
    labels = tf.where(ids < 1000, ids, ids // 1000)
    num_classes = tf.cast(tf.shape(counts)[0], tf.int64)
    known = labels < num_classes
    labels = tf.where(known, labels, 0)
    k = tf.gather(counts, labels)
    draws = tf.random.stateless_uniform(tf.reshape(tf.reduce_max(ids) + 1, [1]),
                                        seed=tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)]))
    index = tf.minimum(tf.cast(tf.floor(tf.gather(draws, ids) * tf.cast(k, tf.float32)), tf.int32),
                       tf.maximum(k - 1, 0))
    centres = tf.gather_nd(table, tf.stack([tf.cast(labels, tf.int32), index], axis=-1))
    valid = tf.logical_and(known, k > 0)[..., None]
    return tf.where(valid, centres, tf.zeros_like(centres))
