"""The metric registry, compute(), MetricValues, the shared input checks, and the docstring examples."""

import doctest
import importlib
import json
import pickle

import numpy as np
import pytest

from dsim.errors import DsimError
from dsim.metrics import METRICS, MetricSpec, MetricValues, available, compute, fid, kid_poly, register

FEATURES = np.random.default_rng(0).normal(size=(120, 8))
#: every distribution metric of the registry (a metric added later is tested here without an edit)
ALL = sorted(name for name, spec in METRICS.items() if spec.kind == "distribution")
SMALL = {"kid_poly": dict(subsets=3, subset_size=50), "kid_rbf": dict(subsets=3, subset_size=50),
         "odist": dict(n_components=4), "isc": dict(splits=3),
         "otdd": dict(reference_labels=np.arange(120) % 3, candidate_labels=np.arange(100) % 2)}
PER_IMAGE = {
    "prdc": {"candidate": {"nearest_reference_distance", "realistic"}, "reference": {"covered", "knn_radius"}},
    "odist": {"candidate": {"i_dist"}},
    "authpct": {"candidate": {"authentic", "nearest_reference_distance"}},
    **{name: {"candidate": {"transport_cost"}} for name in ("emd", "sinkhorn", "sliced_wasserstein", "otdd")},
}


def test_registry_lists_the_metrics():
    distribution = {n: s for n, s in METRICS.items() if s.kind == "distribution"}
    shipped = ["authpct", "cmmd", "emd", "fd_inf", "fid", "isc", "kid_poly", "kid_rbf", "odist", "otdd", "prdc",
               "sinkhorn", "sliced_wasserstein", "vendi"]
    assert sorted(distribution) == ALL == shipped and set(ALL) <= set(available()) and available() == sorted(available())
    assert all(isinstance(s, MetricSpec) and s.name == n and s.doc for n, s in METRICS.items())
    assert {n for n, s in distribution.items() if s.higher_is_better} == {"prdc", "isc", "vendi", "authpct"}
    assert {n: s.input for n, s in distribution.items()} == {n: "logits" if n == "isc" else "features" for n in ALL}
    with pytest.raises(Exception):
        METRICS["fid"].name = "other"  # frozen
    with pytest.raises(ValueError, match="input must be one of"):
        register("new_metric", fid, higher_is_better=False, input="pixels")
    assert "new_metric" not in METRICS


def test_compute_dispatches_with_params():
    assert compute("fid", FEATURES, FEATURES + 1) == fid(FEATURES, FEATURES + 1)
    params = dict(subsets=3, subset_size=50, degree=2)
    assert compute("kid_poly", FEATURES, FEATURES, **params) == kid_poly(FEATURES, FEATURES, **params)


def test_compute_rejects_unknown_names_and_params():
    with pytest.raises(DsimError, match="unknown metric 'fidd'; choose one of: .*cmmd, .*fid, .*kid_poly"):
        compute("fidd", FEATURES, FEATURES)
    with pytest.raises(DsimError, match="no parameter.* sigma; valid: subsets, subset_size, seed, degree"):
        compute("kid_poly", FEATURES, FEATURES, sigma=1.0)
    with pytest.raises(DsimError, match="no parameter.* nearest_k; valid: sigma, scale, device"):
        compute("cmmd", FEATURES, FEATURES, nearest_k=3)


@pytest.mark.parametrize("name", ALL)
def test_every_metric_returns_metric_values(name):
    x, y = FEATURES, FEATURES[:100] + 0.5
    values = compute(name, x, y, **SMALL.get(name, {}))
    assert isinstance(values, MetricValues) and values and all(type(v) is float for v in values.values())
    assert set(values) == set(METRICS[name].values), "the keys returned are the keys declared"
    assert json.loads(json.dumps(values)) == dict(values)
    assert {side: set(cols) for side, cols in values.per_image.items()} == PER_IMAGE.get(name, {})
    for side, cols in values.per_image.items():
        assert all(a.shape == ((len(x) if side == "reference" else len(y)),) for a in cols.values())
    assert not set(values) & {c for cols in values.per_image.values() for c in cols}


def test_metric_values_is_a_plain_dict_with_per_image_alongside():
    values = MetricValues({"odist": 2.0}, per_image={"candidate": {"i_dist": [1.0, 3.0]}})
    assert values == {"odist": 2.0} and json.dumps(values) == '{"odist": 2.0}'
    assert values.per_image["candidate"]["i_dist"].dtype == np.float64
    copy = pickle.loads(pickle.dumps(values))
    assert copy == values and copy.per_image["candidate"]["i_dist"].tolist() == [1.0, 3.0]
    assert MetricValues({"fid": 1.0}).per_image == {}
    assert "per_image={'candidate': ['i_dist']}" in repr(values)
    with pytest.raises(ValueError, match="side must be one of"):
        MetricValues({}, per_image={"both": {}})
    with pytest.raises(ValueError, match="must be 1-D"):
        MetricValues({}, per_image={"reference": {"x": np.zeros((2, 2))}})


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    "reference,candidate,message",
    [
        (FEATURES[:1], FEATURES, "reference set has 1 sample"),
        (FEATURES, FEATURES[:, :4], "8-d features but candidate has 4-d"),
        (FEATURES, np.where(FEATURES > 2, np.nan, FEATURES), "non-finite"),
        (FEATURES.reshape(2, 60, 8), FEATURES, "2-D array"),
        (FEATURES.astype(str), FEATURES, "numeric"),
    ],
)
def test_every_metric_checks_its_inputs(name, reference, candidate, message):
    with pytest.raises(DsimError, match=message):
        compute(name, reference, candidate)


@pytest.mark.parametrize("name", ["fid", "kid_poly", "kid_rbf", "cmmd"])
def test_identical_sets_give_zero_without_complex_numbers(name):
    values = compute(name, FEATURES, FEATURES.copy(), **SMALL.get(name, {}))
    assert type(values[name]) is float
    if name.startswith("kid"):  # unbiased, over independent subsets: 0 within its spread
        assert abs(values[name]) <= 3 * values[f"{name}_std"]
    else:
        assert abs(values[name]) < 1e-9


MODULES = ["_fid", "_kid", "_cmmd", "_prdc", "_isc", "_odist", "bootstrap", "_registry", "_values"]


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(f"dsim.metrics.{module}"))
    assert result.attempted > 0 and result.failed == 0


def test_package_docstring_documents_every_metric_and_parameter():
    import dsim.metrics as package

    for name in ALL + ["subsets", "subset_size", "seed", "sigma", "nearest_k", "splits", "n_components"]:
        assert name in package.__doc__


@pytest.mark.parametrize("name", ALL)
def test_no_metric_modifies_its_inputs(name):
    import torch

    x, y = FEATURES.copy(), FEATURES[:100] + 0.5
    for a, b in [(x, y), (torch.from_numpy(x), torch.from_numpy(y))]:
        compute(name, a, b, **SMALL.get(name, {}))
        np.testing.assert_array_equal(np.asarray(a), FEATURES)
        np.testing.assert_array_equal(np.asarray(b), FEATURES[:100] + 0.5)


def test_max_samples_is_a_seeded_subset_of_each_larger_side():
    from dsim.metrics import compute
    from dsim.metrics.sampling import sample_rows

    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(500, 6)), rng.normal(size=(80, 6)) + 0.5
    with pytest.warns(UserWarning, match="seeded sample of 100 of the 500 reference samples"):
        sampled = compute("prdc", x, y, max_samples=100)
    rows = sample_rows(500, 100, seed=0)
    assert len(rows) == 100 and len(set(rows.tolist())) == 100 and list(rows) == sorted(rows)
    assert sampled == compute("prdc", x[rows], y)           # the candidate (80 rows) is kept whole
    assert compute("prdc", x, y, max_samples=100) == sampled  # the same seed, the same subset
    assert compute("kid_poly", x, y, max_samples=1000, subsets=3, subset_size=50) == compute(
        "kid_poly", x, y, subsets=3, subset_size=50)         # nothing to sample: the metric as it is
