"""The map's pieces on arrays: missed/far flags against a brute-force definition, seeded UMAP, thumbnails."""

import numpy as np
import pandas as pd
import pytest
from visual_helpers import assert_real_png

from dsim.analysis import embedding_map as em
from dsim.errors import DsimError


def _brute_force(x, y, k):
    d_xx = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    np.fill_diagonal(d_xx, np.inf)
    radius = np.sort(d_xx, axis=1)[:, k - 1]
    d = np.sqrt(((x[:, None] - y[None]) ** 2).sum(-1))  # reference i × candidate j
    missed = ~(d < radius[:, None]).any(1)
    far = ~(d < radius[:, None]).any(0)
    return radius, missed, far, d


@pytest.mark.parametrize("k", [1, 3, 5])
def test_missed_and_far_match_the_definition(k):
    rng = np.random.default_rng(k)
    x = rng.normal(size=(60, 6))
    y = np.concatenate([rng.normal(size=(40, 6)) * 0.6, rng.normal(size=(8, 6)) + 4.0])  # narrower, plus outliers
    radius, missed, far, d = _brute_force(x, y, k)
    out = em.missed_features(x, y, nearest_k=k)
    assert out.nearest_k == k
    assert np.allclose(out.reference["knn_radius"], radius, rtol=1e-12)
    assert (out.reference["missed"].to_numpy() == missed).all() and missed.any() and not missed.all()
    assert (out.candidate["far"].to_numpy() == far).all() and far[-8:].all() and not far.all()
    assert (out.reference["nearest_candidate"].to_numpy() == d.argmin(1)).all()
    assert np.allclose(out.reference["nearest_candidate_distance"], d.min(1), rtol=1e-12)
    assert (out.candidate["nearest_reference"].to_numpy() == d.argmin(0)).all()
    assert np.allclose(out.candidate["nearest_reference_distance"], d.min(0), rtol=1e-12)
    assert np.allclose(out.reference["reach"], d.min(1) / radius, rtol=1e-5)
    assert np.allclose(out.candidate["reach"], (d / radius[:, None]).min(0), rtol=1e-5)
    assert ((out.reference["reach"] >= 1 - 1e-5) == out.reference["missed"]).all()


def test_missed_features_needs_more_images_than_k():
    with pytest.raises(DsimError, match="nearest_k"):
        em.missed_features(np.zeros((3, 2)), np.ones((10, 2)), nearest_k=3)


def test_exact_knn_is_the_brute_force_graph():
    x = np.random.default_rng(0).normal(size=(50, 7)).astype(np.float32)
    idx, dist = em.exact_knn(x, 6)
    d = np.sqrt(((x[:, None].astype(np.float64) - x[None]) ** 2).sum(-1))
    assert (idx[:, 0] == np.arange(50)).all() and (dist[:, 0] == 0).all()
    np.fill_diagonal(d, np.inf)
    assert (np.sort(idx[:, 1:], 1) == np.sort(np.argsort(d, 1)[:, :5], 1)).all()
    assert np.allclose(dist[:, 1:], np.sort(d, 1)[:, :5], rtol=1e-6)


def test_umap_is_seeded_deterministic_and_cached(tmp_path):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(30, 16)), rng.normal(size=(30, 16)) + 5]).astype(np.float32)
    a = em.umap_coordinates(x, 2, n_neighbors=8, seed=3)
    b = em.umap_coordinates(x, 2, n_neighbors=8, seed=3)
    assert a.shape == (60, 2) and np.array_equal(a, b)
    c = em.umap_coordinates(x, 3, n_neighbors=8, seed=3, cache_dir=tmp_path)
    assert c.shape == (60, 3) and len(list((tmp_path / "umap").glob("*.npy"))) == 1
    assert np.array_equal(em.umap_coordinates(x, 3, n_neighbors=8, seed=3, cache_dir=tmp_path), c)
    # the two clusters stay apart on the map
    centre_a, centre_b = a[:30].mean(0), a[30:].mean(0)
    spread = max(np.linalg.norm(a[:30] - centre_a, axis=1).max(), np.linalg.norm(a[30:] - centre_b, axis=1).max())
    assert np.linalg.norm(centre_a - centre_b) > spread
    with pytest.raises(DsimError, match="2 and/or 3"):
        em.umap_coordinates(x, 4)


def test_thumbnail_budget_keeps_flagged_images_first():
    points = pd.DataFrame({"status": [""] * 10 + ["missed"] * 3 + [""] * 5 + ["far"] * 2})
    assert em.thumbnail_budget(points, 100).tolist() == list(range(20))
    kept = em.thumbnail_budget(points, 8, seed=1)
    assert len(kept) == 8 and {10, 11, 12, 18, 19} <= set(kept.tolist())
    assert np.array_equal(kept, em.thumbnail_budget(points, 8, seed=1))


def test_thumbnail_data_uri_and_grid(tmp_path):
    from PIL import Image

    for i in range(5):
        Image.fromarray(np.full((64, 80, 3), (40 * i, 200, 255 - 40 * i), np.uint8)).save(tmp_path / f"{i}.png")
    uri = em.thumbnail_data_uri(tmp_path / "0.png", 32)
    assert uri.startswith("data:image/jpeg;base64,")
    assert em.thumbnail_data_uri(tmp_path / "missing.png", 32) is None
    table = pd.DataFrame({"relpath": [f"{i}.png" for i in range(5)], "reach": np.linspace(3, 1, 5)})
    grid = assert_real_png(em.thumbnail_grid(tmp_path / "grid.png", table, tmp_path, title="t", caption="reach"),
                           min_bytes=1000)
    assert (np.abs(grid.reshape(-1, 3) - (160, 200, 95)).sum(1) < 12).sum() > 2000  # the fifth image's colour
    empty = em.thumbnail_grid(tmp_path / "none.png", table.iloc[:0], tmp_path, title="nothing missed", caption="reach")
    assert empty.is_file()
