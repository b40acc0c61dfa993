"""pix2pixHD instance features (NVIDIA encode_features / KMeans / sample_features): `tfi2i.features`."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tfi2i import features as F
from tfi2i.networks.feature_encoder import feature_encoder, instance_average


def _ids_4x8():
    # left half (cols 0-3): 26001 (16 px); right half: 7 (rows 0-2, 12 px) and 26002 (row 3, 4 px).
    ids = np.zeros((1, 4, 8, 1), np.int32)
    ids[0, :, :4] = 26001
    ids[0, :3, 4:] = 7
    ids[0, 3, 4:] = 26002
    return ids


def test_label_of():
    assert F.label_of(7) == 7 and F.label_of(999) == 999 and F.label_of(26001) == 26 and F.label_of(1000) == 1
    np.testing.assert_array_equal(F.label_of(np.array([3, 26001, 33002])), [3, 26, 33])


def test_instance_features_hand_values():
    ids = _ids_4x8()
    flat = np.arange(32, dtype=np.float32).reshape(1, 4, 8, 1)
    features = np.concatenate([flat, 100 + flat], axis=-1)  # raw (not averaged) to expose the middle pixel
    rows = F.instance_features(features, ids, num_classes=30, block_num=8)  # area denominator 4 * 8 // 8 = 4
    assert set(rows) == set(range(30))
    assert rows[0].shape == (0, 3)
    # 7: raster pixels 4..7, 12..15, 20..23 (12) -> nonzero()[6] = 14; area 12 / 4 = 3
    np.testing.assert_array_equal(rows[7], [[14, 114, 3.0]])
    # 26 holds 26001 then 26002 (np.unique order):
    # 26001: 0..3, 8..11, 16..19, 24..27 -> [8] = 16, area 4; 26002: 28..31 -> [2] = 30, area 1
    np.testing.assert_array_equal(rows[26], [[16, 116, 4.0], [30, 130, 1.0]])
    # NVIDIA's block_num 32: denominator 1.
    np.testing.assert_array_equal(F.instance_features(features, ids, 30)[7][:, -1], [12.0])
    # A batch of 2 = two maps of batch 1.
    both = F.instance_features(np.concatenate([features, features]), np.concatenate([ids, ids]), 30, 8)
    np.testing.assert_array_equal(both[26], np.concatenate([rows[26], rows[26]]))
    with pytest.raises(ValueError, match="outside range"):
        F.instance_features(features, ids, num_classes=20)


def _tiny_encoder():
    tf.keras.utils.set_random_seed(0)
    return feature_encoder(feat_num=3, nef=2, n_downsample=1)


def test_encode_dataset_accumulates_averaged_rows():
    encoder = _tiny_encoder()
    rng = np.random.default_rng(0)
    ids = _ids_4x8()
    batches = [{"y": rng.uniform(-1, 1, (1, 4, 8, 3)).astype(np.float32), "instance_ids": ids} for _ in range(3)]
    rows = F.encode_dataset(encoder, batches, num_classes=30)
    assert rows[7].shape == (3, 4) and rows[26].shape == (6, 4) and rows[3].shape == (0, 4)
    for n, batch in enumerate(batches):
        raw = encoder({"image": batch["y"]}).numpy()[0]
        np.testing.assert_allclose(rows[7][n, :3], raw[:3, 4:].reshape(-1, 3).mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(rows[26][2 * n, :3], raw[:, :4].reshape(-1, 3).mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(rows[26][:, 3], [16, 4] * 3)
    averaged = instance_average(encoder({"image": batches[0]["y"]}), ids)
    np.testing.assert_allclose(F.encoded_features(encoder, batches[0]["y"], ids).numpy(), averaged.numpy())


def test_cluster_features_recovers_separated_clusters():
    rng = np.random.default_rng(0)
    means = np.array([[-0.8, 0.0, 0.5], [0.7, 0.7, -0.6], [0.1, -0.9, 0.9]])
    blobs = np.concatenate([m + 0.01 * rng.normal(size=(20, 3)) for m in means])
    big = np.concatenate([blobs, np.ones((60, 1))], axis=1)
    small = np.concatenate([rng.uniform(5, 6, size=(10, 3)), np.full((10, 1), 0.5)], axis=1)  # area 0.5: dropped
    rows = {
        0: np.concatenate([big, small]),
        1: np.array([[0.1, 0.2, 0.3, 2.0], [0.4, 0.5, 0.6, 0.9]]),  # 2 rows, n_clusters 3 -> k = 2
        2: small,  # nothing large enough: no entry
        3: np.zeros((0, 4)),
    }
    clusters = F.cluster_features(rows, n_clusters=3)
    assert sorted(clusters) == [0, 1]
    got = clusters[0][np.argsort(clusters[0][:, 0])]
    np.testing.assert_allclose(got, means[np.argsort(means[:, 0])], atol=0.01)
    assert clusters[0].dtype == np.float32
    np.testing.assert_allclose(np.sort(clusters[1], axis=0), rows[1][:, :3], atol=1e-6)
    again = F.cluster_features(rows, n_clusters=3)  # random_state=0: deterministic
    np.testing.assert_array_equal(again[0], clusters[0])


def test_save_load_round_trip(tmp_path):
    clusters = {0: np.arange(6, dtype=np.float32).reshape(2, 3), 26: np.ones((1, 3), np.float32)}
    path = tmp_path / F.clusters_filename(10)
    assert path.name == "features_clustered_010.npz"
    F.save_clusters(path, clusters)
    loaded = F.load_clusters(path)
    assert sorted(loaded) == [0, 26]
    for k in clusters:
        np.testing.assert_array_equal(loaded[k], clusters[k])
    assert sorted(os.listdir(tmp_path)) == [path.name]  # no temporary file left
    rows = {0: np.zeros((0, 4)), 5: np.ones((2, 4))}
    F.save_rows(tmp_path / "features.npz", rows)
    back = F.load_rows(tmp_path / "features.npz")
    assert back[0].shape == (0, 4) and np.array_equal(back[5], rows[5])


def test_load_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(F.FeatureFileError, match="nope.npz.*not found"):
        F.load_clusters(missing)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not an npz")
    with pytest.raises(F.FeatureFileError, match="garbage.npz"):
        F.load_clusters(garbage)
    rows = tmp_path / "rows.npz"
    F.save_rows(rows, {1: np.ones((2, 4))})
    with pytest.raises(F.FeatureFileError, match="rows.npz.*not a clusters file"):
        F.load_clusters(rows)
    odd = tmp_path / "odd.npz"
    np.savez(odd, __kind__=np.array("clusters"), label_1=np.ones((2, 3)), label_2=np.ones((2, 4)))
    with pytest.raises(F.FeatureFileError, match="odd.npz.*label_2"):
        F.load_clusters(odd)
    stray = tmp_path / "stray.npz"
    np.savez(stray, __kind__=np.array("clusters"), centres=np.ones((2, 3)))
    with pytest.raises(F.FeatureFileError, match="stray.npz.*unexpected entry 'centres'"):
        F.load_clusters(stray)


def test_sample_features_deterministic_and_per_instance():
    ids = np.concatenate([_ids_4x8(), _ids_4x8()])
    ids[1, 0, 0] = 3  # label 3 has no clusters -> 0
    rng = np.random.default_rng(0)
    clusters = {7: rng.normal(size=(5, 3)).astype(np.float32), 26: rng.normal(size=(10, 3)).astype(np.float32)}
    a = F.sample_features(ids, clusters, feat_num=3, seed=123)
    b = F.sample_features(tf.constant(ids), clusters, feat_num=3, seed=123)
    assert a.shape == (2, 4, 8, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[1, 0, 0], [0, 0, 0])
    for i, label in [(7, 7), (26001, 26), (26002, 26)]:
        values = np.unique(a[ids[..., 0] == i], axis=0)
        assert values.shape == (1, 3)  # one centre per id, the same in both examples (as NVIDIA)
        assert any(np.array_equal(values[0], c) for c in clusters[label])
    # Draw order: one rng.integers per id with clusters, in sorted id order (3 has none: no draw).
    draw = np.random.default_rng(123)
    expected = {i: clusters[F.label_of(i)][draw.integers(0, len(clusters[F.label_of(i)]))] for i in (7, 26001, 26002)}
    for i, centre in expected.items():
        np.testing.assert_array_equal(a[ids[..., 0] == i][0], centre)
    others = [F.sample_features(ids, clusters, 3, seed=s) for s in range(8)]
    assert any(not np.array_equal(o, a) for o in others)
    with pytest.raises(ValueError, match="label 7"):
        F.sample_features(ids, {7: np.ones((2, 4))}, feat_num=3, seed=0)
