"""The metric registry, compute(), the shared input checks, and the docstring examples."""

import doctest
import importlib

import numpy as np
import pytest

from dsim.errors import DsimError
from dsim.metrics import METRICS, MetricSpec, available, compute, fid, kid_poly

FEATURES = np.random.default_rng(0).normal(size=(120, 8))


def test_registry_lists_the_metrics():
    assert available() == ["fid", "kid_poly", "kid_rbf"]
    assert all(isinstance(s, MetricSpec) and s.name == n for n, s in METRICS.items())
    assert all(not s.higher_is_better and s.kind == "distribution" and s.doc for s in METRICS.values())
    with pytest.raises(Exception):
        METRICS["fid"].name = "other"  # frozen


def test_compute_dispatches_with_params():
    assert compute("fid", FEATURES, FEATURES + 1) == fid(FEATURES, FEATURES + 1)
    params = dict(subsets=3, subset_size=50, degree=2)
    assert compute("kid_poly", FEATURES, FEATURES, **params) == kid_poly(FEATURES, FEATURES, **params)


def test_compute_rejects_unknown_names_and_params():
    with pytest.raises(DsimError, match="unknown metric 'fidd'; choose one of: fid, kid_poly, kid_rbf"):
        compute("fidd", FEATURES, FEATURES)
    with pytest.raises(DsimError, match="no parameter.* sigma; valid: subsets, subset_size, seed, degree"):
        compute("kid_poly", FEATURES, FEATURES, sigma=1.0)


@pytest.mark.parametrize("name", ["fid", "kid_poly", "kid_rbf"])
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


@pytest.mark.parametrize("module", ["frechet", "kid", "_registry"])
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(f"dsim.metrics.{module}"))
    assert result.attempted > 0 and result.failed == 0
