"""PRDC: parity with the prdc package and torch-fidelity, the `<` convention, exactness, per-image scores."""

import contextlib
import io

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

import dsim.metrics._knn as knn
from dsim.errors import DsimError
from dsim.metrics import prdc

CASES = {
    "shifted": dict(n=400, m=350, d=16, shift=0.3, scale=1.0),
    "wider": dict(n=300, m=320, d=64, shift=0.0, scale=1.5),
    "low_dim": dict(n=200, m=150, d=2, shift=0.5, scale=0.7),
    "tiny": dict(n=12, m=9, d=5, shift=0.1, scale=1.0),
}


def pair(case, seed=0):
    c = CASES[case]
    rng = np.random.default_rng(seed)
    return rng.normal(size=(c["n"], c["d"])), rng.normal(c["shift"], c["scale"], size=(c["m"], c["d"]))


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


def brute_force(x, y, k):
    """Exact PRDC from full distance matrices (scipy's cdist: differences first, like ours)."""
    d_xx, d_yy, d_xy = cdist(x, x), cdist(y, y), cdist(x, y)
    np.fill_diagonal(d_xx, np.inf)
    np.fill_diagonal(d_yy, np.inf)
    r = np.sort(d_xx, axis=1)[:, k - 1]
    s = np.sort(d_yy, axis=1)[:, k - 1]
    inside = d_xy < r[:, None]  # [i, j]: candidate j in reference ball i
    return dict(
        precision=inside.any(0).mean(),
        recall=(d_xy < s[None, :]).any(1).mean(),
        density=inside.sum() / (k * len(y)),
        coverage=inside.any(1).mean(),
        r=r,
        nearest=d_xy.min(0),
        realistic=inside.any(0),
        covered=inside.any(1),
    )


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("case", CASES)
def test_matches_prdc_package(case, k):
    pkg = pytest.importorskip("prdc")
    x, y = pair(case)
    if k >= min(len(x), len(y)):
        pytest.skip("nearest_k too large for the set")
    with contextlib.redirect_stdout(io.StringIO()):  # compute_prdc prints the set sizes
        expected = pkg.compute_prdc(real_features=x, fake_features=y, nearest_k=k)
    got = prdc(x, y, nearest_k=k)
    for key in ("precision", "recall", "density", "coverage"):
        assert rel(got[key], float(expected[key])) <= 1e-6, key


@pytest.mark.parametrize("case", ["shifted", "wider", "low_dim"])
@pytest.mark.parametrize("mode", ["full", "part"])
def test_precision_recall_match_torch_fidelity(case, mode):
    tf = pytest.importorskip("torch_fidelity.metric_prc")
    x, y = pair(case, seed=1)
    fn = tf.calculate_precision_recall_full if mode == "full" else tf.calculate_precision_recall_part
    # torch-fidelity's convention: features_1 = generated (candidate), features_2 = real (reference)
    precision, recall = fn(torch.from_numpy(y), torch.from_numpy(x), neighborhood=3, batch_size=97)
    got = prdc(x, y, nearest_k=3)
    assert rel(got["precision"], precision) <= 1e-6
    assert rel(got["recall"], recall) <= 1e-6


def test_boundary_uses_strict_less_than():
    """A candidate exactly on a reference ball's boundary is outside (prdc's `<`, not torch-fidelity's `≤`)."""
    reference = np.array([[0.0], [4.0], [8.0]])  # k=1 radii: 4, 4, 4
    candidate = np.array([[12.0], [30.0], [31.0]])  # 12 is exactly 4 from 8
    got = prdc(reference, candidate, nearest_k=1)
    assert got["precision"] == 0.0 and got["density"] == 0.0 and got["coverage"] == 0.0
    assert got.per_image["candidate"]["nearest_reference_distance"].tolist() == [4.0, 22.0, 23.0]
    pkg = pytest.importorskip("prdc")
    with contextlib.redirect_stdout(io.StringIO()):
        assert pkg.compute_prdc(reference, candidate, 1)["precision"] == 0.0
    tf = pytest.importorskip("torch_fidelity.metric_prc")
    precision, _ = tf.calculate_precision_recall_full(torch.from_numpy(candidate), torch.from_numpy(reference), 1)
    assert precision == pytest.approx(1 / 3)  # `≤`: the boundary candidate counts


@pytest.mark.parametrize("case", CASES)
def test_identical_sets_score_one(case):
    x, _ = pair(case)
    got = prdc(x, x.copy())
    assert dict(got) == {"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0}


def test_per_image_scores_match_brute_force():
    x, y = pair("shifted")
    got = prdc(x, y, nearest_k=4)
    expected = brute_force(x, y, 4)
    cand, ref = got.per_image["candidate"], got.per_image["reference"]
    assert set(cand) == {"nearest_reference_distance", "realistic"} and set(ref) == {"covered", "knn_radius"}
    assert all(len(a) == len(y) for a in cand.values()) and all(len(a) == len(x) for a in ref.values())
    np.testing.assert_allclose(cand["nearest_reference_distance"], expected["nearest"], rtol=1e-12)
    np.testing.assert_allclose(ref["knn_radius"], expected["r"], rtol=1e-12)
    np.testing.assert_array_equal(cand["realistic"], expected["realistic"].astype(float))
    np.testing.assert_array_equal(ref["covered"], expected["covered"].astype(float))
    assert cand["realistic"].mean() == got["precision"] and ref["covered"].mean() == got["coverage"]
    assert not set(got) & {"nearest_reference_distance", "realistic", "covered", "knn_radius"}


def lattice(seed):
    """Integer points with many exact distance ties and duplicate rows (bootstrap-like)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, size=(150, 3)).astype(float)
    return x, rng.integers(0, 4, size=(120, 3)).astype(float) + np.array([1.0, 0.0, 0.0])


@pytest.mark.parametrize("k", [1, 3, 7])
def test_exact_with_ties_and_duplicates(k):
    x, y = lattice(k)
    got = prdc(x, y, nearest_k=k)
    expected = brute_force(x, y, k)
    for key in ("precision", "recall", "density", "coverage"):
        assert got[key] == pytest.approx(expected[key], abs=1e-15), key
    np.testing.assert_array_equal(got.per_image["reference"]["knn_radius"], expected["r"])


@pytest.mark.parametrize("scale", [1e-35, 1e-3, 1e20])
def test_extreme_feature_scales_stay_exact(scale):
    """float32 would underflow (1e-35) or overflow (1e20): the screen switches to float64."""
    x, y = pair("shifted")
    expected = run_all(x, y)
    got = prdc(x * scale, y * scale)
    assert dict(got) == expected[0]
    np.testing.assert_allclose(got.per_image["reference"]["knn_radius"] / scale,
                               expected[1]["reference"]["knn_radius"], rtol=1e-12)


def test_all_points_identical_does_not_crash():
    x = np.ones((20, 4))
    got = prdc(x, x)
    assert dict(got) == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}  # radius 0: `0 < 0` is false


def run_all(x, y, k=3):
    got = prdc(x, y, nearest_k=k)
    return dict(got), {s: {c: a.tolist() for c, a in cols.items()} for s, cols in got.per_image.items()}


TILINGS = [  # (tile side, screen dtype); CHUNK_BYTES = 16 · side²
    (1, None), (7, None), (64, None), (2**18, torch.float64), (33, torch.float64),
]


@pytest.mark.parametrize("data", ["gaussian", "lattice"])
def test_same_bits_whatever_the_tiling_and_screen_precision(data, monkeypatch):
    x, y = pair("shifted") if data == "gaussian" else lattice(0)
    x, y = x[:150], y[:130]
    baselines = {"full": run_all(x, y), "small": run_all(x[:40], y[:35])}  # default tiles and screen
    for side, dtype in TILINGS:
        monkeypatch.setattr(knn, "CHUNK_BYTES", 16 * side * side)
        monkeypatch.setattr(knn, "SCREEN_DTYPE", dtype)
        if side == 1:  # 1×1 tiles: keep the Python loop short
            assert run_all(x[:40], y[:35]) == baselines["small"], (side, dtype)
        else:
            assert run_all(x, y) == baselines["full"], (side, dtype)


def test_screen_band_and_fallbacks_are_exercised(monkeypatch):
    """Lattice ties put pairs in the uncertainty band and make neighbour lists fail their check."""
    calls = {"pairs": 0, "rows": 0}
    pair_distances, row_distances = knn.pair_distances, knn.row_distances

    def counting_pairs(*args):
        calls["pairs"] += 1
        return pair_distances(*args)

    def counting_rows(*args):
        calls["rows"] += 1
        return row_distances(*args)

    monkeypatch.setattr(knn, "pair_distances", counting_pairs)
    monkeypatch.setattr(knn, "row_distances", counting_rows)
    monkeypatch.setattr(knn, "EXTRA", 1)
    x, y = lattice(1)
    got = prdc(x, y, nearest_k=3)
    assert calls["pairs"] > 0 and calls["rows"] > 0
    expected = brute_force(x, y, 3)
    assert got["density"] == pytest.approx(expected["density"], abs=1e-15)


def test_input_types_give_the_same_numbers():
    x, y = pair("shifted")
    expected = run_all(x, y)
    assert run_all(x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64)) == run_all(
        x.astype(np.float32), torch.from_numpy(y.astype(np.float32))
    )
    assert run_all(torch.from_numpy(x), torch.from_numpy(y)) == expected


def test_more_shift_means_lower_precision_and_coverage():
    x, _ = pair("shifted")
    rng = np.random.default_rng(3)
    y = rng.normal(size=(400, 16))
    results = [prdc(x, y + shift) for shift in (0.0, 0.5, 1.0, 2.0)]
    for key in ("precision", "coverage", "density"):
        values = [r[key] for r in results]
        assert values == sorted(values, reverse=True) and values[0] > values[-1], (key, values)


def test_rejects_bad_parameters():
    x, y = pair("tiny")
    with pytest.raises(DsimError, match="nearest_k=9 needs more than 9 samples per set, but the candidate set has 9"):
        prdc(x, y, nearest_k=9)
    with pytest.raises(DsimError, match="nearest_k must be an integer >= 1"):
        prdc(x, y, nearest_k=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    x, y = pair("shifted")
    assert run_all(x, y) == run_all(torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda())
