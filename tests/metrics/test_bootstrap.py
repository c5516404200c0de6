"""Intervals through compute(): keys, seeding, the estimate always inside, the half-sampling scheme, and
about 95 % coverage of FID's expectation on Gaussians."""

import warnings

import numpy as np
import pytest
import torch

from dsim.errors import DsimError
from dsim.metrics import SubsetSizeWarning, bootstrap_intervals, compute

RNG = np.random.default_rng(0)
REFERENCE = RNG.normal(size=(150, 8))
CANDIDATE = RNG.normal(0.6, 1.2, size=(140, 8))
LOGITS_REF, LOGITS_CAND = RNG.normal(size=(150, 12)) * 3, RNG.normal(size=(140, 12))

FAST = {
    "fid": {},
    "kid_poly": dict(subsets=5, subset_size=50),
    "kid_rbf": dict(subsets=5, subset_size=50, sigma=3.0),
    "cmmd": {},
    "prdc": {},
    "isc": dict(splits=2),
    "odist": dict(n_components=4),
}


def inputs(name):
    return (LOGITS_REF, LOGITS_CAND) if name == "isc" else (REFERENCE, CANDIDATE)


@pytest.mark.parametrize("name", FAST)
def test_adds_an_interval_for_every_scalar_but_std(name):
    x, y = inputs(name)
    point = compute(name, x, y, **FAST[name])
    boot = compute(name, x, y, bootstrap=8, bootstrap_seed=1, **FAST[name])
    scalars = [k for k in point if not k.endswith("_std")]
    expected_keys = list(point) + [f"{k}_ci_{side}" for k in scalars for side in ("low", "high")]
    assert sorted(boot) == sorted(expected_keys)
    assert {k: boot[k] for k in point} == dict(point)
    for k in scalars:
        assert boot[f"{k}_ci_low"] <= boot[f"{k}_ci_high"]
    assert {s: set(c) for s, c in boot.per_image.items()} == {s: set(c) for s, c in point.per_image.items()}


@pytest.mark.parametrize("name", ["cmmd", "kid_poly", "fid", "odist"])
def test_interval_contains_the_point_estimate(name):  # always, by construction (median-centred deviations)
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(300, 6)), rng.normal(1.0, 1.0, size=(300, 6))
    params = dict(FAST[name])
    if name == "kid_poly":
        params = dict(subsets=20, subset_size=100)
    boot = compute(name, x, y, bootstrap=30, bootstrap_seed=2, **params)
    assert boot[f"{name}_ci_low"] < boot[name] < boot[f"{name}_ci_high"]


def test_deterministic_by_seed():
    runs = [compute("cmmd", REFERENCE, CANDIDATE, bootstrap=10, bootstrap_seed=s) for s in (3, 3, 4)]
    assert runs[0] == runs[1] and runs[0] != runs[2]
    tensors = compute("cmmd", torch.from_numpy(REFERENCE), torch.from_numpy(CANDIDATE), bootstrap=10, bootstrap_seed=3)
    assert tensors == runs[0]


def test_half_samples_both_sets_without_replacement_in_a_fixed_order():
    def fake(reference, candidate):
        assert len(np.unique(reference)) == len(reference)  # never a duplicated row
        return {"a": float(reference.sum()), "b": float(candidate.sum()), "b_std": 0.0}

    x, y = np.arange(10.0)[:, None], 100 + np.arange(7.0)[:, None]
    got = bootstrap_intervals(fake, x, y, replicates=50, seed=9)
    rng = np.random.default_rng(9)
    a, b = [], []
    for _ in range(50):
        a.append(x[np.sort(rng.choice(10, size=5, replace=False))].sum())
        b.append(y[np.sort(rng.choice(7, size=3, replace=False))].sum())
    estimate = fake(x, y)
    expected = {}
    for key, draws in (("a", np.array(a)), ("b", np.array(b))):
        deviation = draws - np.median(draws)  # rate correction sqrt(m / (n - m)) = 1 for the reference's 5 of 10
        low, high = np.percentile(deviation, [2.5, 97.5])
        expected.update({f"{key}_ci_low": estimate[key] - high, f"{key}_ci_high": estimate[key] - low})
    assert got == pytest.approx(expected)


def test_the_interval_always_contains_the_estimate_even_where_resampling_biases_it():
    """The issue's case: FID of resamples with replacement sits above the estimate; half-samples do not."""
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(120, 30)), rng.normal(0.2, 1.0, size=(120, 30))  # few rows for 30 dims: a large bias
    boot = compute("fid", x, y, bootstrap=40)
    assert boot["fid_ci_low"] < boot["fid"] < boot["fid_ci_high"]
    got = compute("prdc", x, y, bootstrap=20)
    for name in ("precision", "recall", "density", "coverage"):  # k-NN radii: duplicates would shrink them
        assert got[f"{name}_ci_low"] <= got[name] <= got[f"{name}_ci_high"]


@pytest.mark.slow
def test_fid_intervals_cover_the_estimators_expectation_95_percent_of_the_time():
    """Gaussians N(0, I) and N(0.3·1, diag(1.5)) in 4-d (analytic FID 4·0.09 + 4·(1 + 1.5 - 2·sqrt(1.5))):
    over repeated draws of n = 200 a side, the interval covers E[FID estimate at n = 200] (Monte Carlo)
    about 95 % of the time, and is about as wide as the estimate's true 95 % range."""
    from dsim.metrics import fid

    d, n, shift, var = 4, 200, 0.3, 1.5
    analytic = d * shift ** 2 + d * (1 + var - 2 * np.sqrt(var))
    rng = np.random.default_rng(2024)

    def draw():
        return rng.normal(size=(n, d)), rng.normal(shift, np.sqrt(var), size=(n, d))

    estimates = np.array([fid(*draw())["fid"] for _ in range(600)])
    expectation = estimates.mean()
    assert expectation == pytest.approx(analytic, rel=0.5) and expectation > analytic  # FID's finite-n bias
    true_width = np.subtract(*np.percentile(estimates, [97.5, 2.5]))
    covered, widths = [], []
    for rep in range(100):
        boot = compute("fid", *draw(), bootstrap=40, bootstrap_seed=rep)
        covered.append(boot["fid_ci_low"] <= expectation <= boot["fid_ci_high"])
        widths.append(boot["fid_ci_high"] - boot["fid_ci_low"])
        assert boot["fid_ci_low"] <= boot["fid"] <= boot["fid_ci_high"]
    assert 0.88 <= np.mean(covered) <= 1.0, np.mean(covered)
    assert 0.7 < np.mean(widths) / true_width < 1.5, (np.mean(widths), true_width)


def test_zero_means_off_and_bad_values_are_rejected():
    assert compute("cmmd", REFERENCE, CANDIDATE, bootstrap=0) == compute("cmmd", REFERENCE, CANDIDATE)
    with pytest.raises(DsimError, match="bootstrap must be an integer >= 0"):
        compute("cmmd", REFERENCE, CANDIDATE, bootstrap=-1)
    with pytest.raises(DsimError, match="bootstrap_seed must be an integer >= 0"):
        compute("cmmd", REFERENCE, CANDIDATE, bootstrap=2, bootstrap_seed=1.5)


def test_metric_warnings_are_shown_once():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compute("kid_poly", REFERENCE, CANDIDATE, subsets=3, subset_size=1000, bootstrap=4)
    assert sum(issubclass(w.category, SubsetSizeWarning) for w in caught) == 1


def test_paired_resampling_keeps_pairs_together():
    def gap(reference, candidate):
        return {"gap": float(np.abs(reference - candidate).max())}

    x = np.arange(20.0)[:, None]
    assert bootstrap_intervals(gap, x, x + 1, replicates=20, seed=0, paired=True) == {
        "gap_ci_low": 1.0, "gap_ci_high": 1.0}
    assert bootstrap_intervals(gap, x, x + 1, replicates=20, seed=0)["gap_ci_high"] > 1.0
    with pytest.raises(DsimError, match="paired sets must have the same length"):
        bootstrap_intervals(gap, x, x[:5], replicates=2, paired=True)


def test_bounds_of_bounded_values_stay_in_their_range():
    """Precision near 0 on far sets: the reflected interval would dip below 0; it is clipped there."""
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(80, 6)), rng.normal(2.5, 1.0, size=(90, 6))
    got = compute("prdc", x, y, bootstrap=30)
    for name in ("precision", "recall", "coverage"):
        assert 0.0 <= got[f"{name}_ci_low"] <= got[name] <= got[f"{name}_ci_high"] <= 1.0
    assert got["density_ci_low"] >= 0.0
    near = compute("fid", x, x[::-1] + 1e-3, bootstrap=20)
    assert near["fid_ci_low"] >= 0.0
