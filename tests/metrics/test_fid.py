"""FID: parity with torch-fidelity and pytorch-fid, sanity properties, the rank-deficiency warning."""

import warnings

import numpy as np
import pytest
import torch

from dsim.errors import DsimError
from dsim.metrics import RankDeficientWarning, fid, fid_from_stats

CASES = {
    "shifted": dict(n=500, d=64, shift=0.5, scale=1.0),
    "scaled": dict(n=500, d=64, shift=0.0, scale=2.0),
    "shifted_scaled": dict(n=500, d=64, shift=-1.0, scale=0.3),
    "n_below_d": dict(n=40, d=64, shift=0.2, scale=1.5),
}


def correlated(n, d, seed, shift=0.0, scale=1.0):
    """Features with a random (non-diagonal) covariance, shifted and scaled."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d)) / np.sqrt(d)
    return (rng.normal(size=(n, d)) @ mixing) * scale + shift


def pair(case):
    c = CASES[case]
    return correlated(c["n"], c["d"], seed=1), correlated(c["n"] + 13, c["d"], 2, c["shift"], c["scale"])


def ours(x, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankDeficientWarning)
        return fid(x, y)["fid"]


def rel(a, b):
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("case", CASES)
def test_matches_torch_fidelity(case):
    tf = pytest.importorskip("torch_fidelity.metric_fid")
    x, y = pair(case)
    s1, s2 = (tf.fid_features_to_statistics(torch.from_numpy(f)) for f in (x, y))
    expected = tf.fid_statistics_to_metric(s1, s2, verbose=False)[tf.KEY_METRIC_FID]
    assert rel(ours(x, y), expected) <= 1e-6


@pytest.mark.parametrize("case", CASES)
def test_matches_pytorch_fid(case):
    pf = pytest.importorskip("pytorch_fid.fid_score")
    x, y = pair(case)
    expected = pf.calculate_frechet_distance(
        x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
    )
    assert rel(ours(x, y), float(expected)) <= 1e-6


@pytest.mark.parametrize("n,d", [(500, 64), (40, 64), (64, 256)])
def test_identical_sets_give_zero(n, d):
    x = correlated(n, d, seed=3, scale=5.0)
    value = ours(x, x)
    assert type(value) is float
    assert abs(value) < 1e-6 * np.trace(np.cov(x, rowvar=False))


def test_grows_with_mean_shift():
    x = correlated(400, 32, seed=4)
    y = correlated(400, 32, seed=5)
    values = [fid(x, y + shift)["fid"] for shift in (0.0, 0.1, 0.3, 1.0, 3.0)]
    assert all(a < b for a, b in zip(values, values[1:]))


def test_shift_adds_squared_norm():
    x = correlated(300, 16, seed=6)
    assert fid(x, x + 0.5)["fid"] == pytest.approx(16 * 0.25, rel=1e-9)


def test_warns_when_fewer_samples_than_dimensions():
    x, y = correlated(40, 64, seed=7), correlated(100, 64, seed=8)
    with pytest.warns(RankDeficientWarning, match="40 reference samples for 64-d features.*at least 65 images"):
        fid(x, y)


def test_no_warning_with_enough_samples():
    x = correlated(65, 64, seed=9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fid(x, x + 1)


def test_input_types_give_the_same_number():
    x, y = pair("shifted")
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    expected = fid(x32.astype(np.float64), y32.astype(np.float64))
    assert fid(x32, y32) == expected
    assert fid(torch.from_numpy(x32), torch.from_numpy(y32)) == expected
    assert fid(x32, y32, device=torch.device("cpu")) == expected


def test_from_stats_matches_fid():
    x, y = pair("scaled")
    from_stats = fid_from_stats(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert from_stats == pytest.approx(fid(x, y)["fid"], rel=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    x, y = pair("shifted")
    assert fid(x, y, device="cuda")["fid"] == pytest.approx(fid(x, y)["fid"], rel=1e-9)


def test_inputs_are_never_modified():
    x, y = pair("shifted")
    for a, b in [(x, y), (torch.from_numpy(x), torch.from_numpy(y)), (x.astype(np.float32), y)]:
        before = [np.array(v, copy=True) for v in (a, b)]
        fid(a, b)
        for v, original in zip((a, b), before):
            np.testing.assert_array_equal(np.asarray(v), original)


def test_streamed_statistics_give_fid_whatever_the_chunking():
    """FeatureStats merged over chunks (as streamed from the store, or across shards and machines) equal the
    statistics of the whole set, and give the same FID as the in-memory path."""
    from dsim.metrics import FeatureStats, fid_from_feature_stats

    x, y = pair("scaled")
    whole = fid(x, y)["fid"]
    for chunk in (1, 7, 100, len(x)):
        sx = FeatureStats.of_chunks(x[i:i + chunk] for i in range(0, len(x), chunk))
        sy = FeatureStats.of_chunks(y[i:i + chunk] for i in range(0, len(y), chunk))
        assert sx.n == len(x)
        np.testing.assert_allclose(sx.mean, x.mean(0), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(sx.covariance, np.cov(x, rowvar=False), rtol=1e-10, atol=1e-12)
        assert fid_from_feature_stats(sx, sy)["fid"] == pytest.approx(whole, rel=1e-10)


def test_streamed_statistics_keep_precision_with_large_means():
    """The scatter is kept centred, so a mean of 1e6 (with unit spread) loses nothing."""
    from dsim.metrics import FeatureStats

    rng = np.random.default_rng(5)
    x = rng.normal(size=(4000, 3)) + 1e6
    merged = FeatureStats.of_chunks(x[i:i + 333] for i in range(0, len(x), 333))
    np.testing.assert_allclose(merged.covariance, np.cov(x - 1e6, rowvar=False), rtol=1e-8, atol=1e-9)


def test_statistics_of_different_dimensions_do_not_merge():
    from dsim.metrics import FeatureStats

    with pytest.raises(DsimError, match="cannot merge statistics of 3-d and 4-d"):
        FeatureStats.of(np.ones((2, 3))).merge(FeatureStats.of(np.ones((2, 4))))
