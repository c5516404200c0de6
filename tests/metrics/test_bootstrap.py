"""Bootstrap intervals through compute(): keys, seeding, coverage of the point estimate, resampling scheme."""

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
def test_interval_contains_the_point_estimate(name):
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


def test_resamples_both_sets_with_replacement_in_a_fixed_order():
    def fake(reference, candidate):
        return {"a": float(reference.sum()), "b": float(candidate.sum()), "b_std": 0.0}

    x, y = np.arange(10.0)[:, None], 100 + np.arange(7.0)[:, None]
    got = bootstrap_intervals(fake, x, y, replicates=50, seed=9)
    rng = np.random.default_rng(9)
    a, b = [], []
    for _ in range(50):
        a.append(x[rng.integers(0, 10, size=10)].sum())
        b.append(y[rng.integers(0, 7, size=7)].sum())
    assert got == {
        "a_ci_low": np.percentile(a, 2.5), "a_ci_high": np.percentile(a, 97.5),
        "b_ci_low": np.percentile(b, 2.5), "b_ci_high": np.percentile(b, 97.5),
    }


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
