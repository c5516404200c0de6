"""Inception Score: parity with torch-fidelity (shuffle, splits, std), reference score, clipping, guards."""

import warnings

import numpy as np
import pytest
import torch

from dsim.errors import DsimError
from dsim.metrics import METRICS, ClippedParameterWarning, isc


def logits(n, c=50, seed=0, temperature=3.0):
    return np.random.default_rng(seed).normal(size=(n, c)) * temperature


def torch_fidelity_isc(x, splits, seed):
    tf = pytest.importorskip("torch_fidelity.metric_isc")
    out = tf.isc_features_to_metric(
        torch.from_numpy(x), splits=splits, shuffle=seed is not None, rng_seed=0 if seed is None else seed
    )
    return out[tf.KEY_METRIC_ISC_MEAN], out[tf.KEY_METRIC_ISC_STD]


def rel(a, b):
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("seed", [0, 2020, 7, None])
@pytest.mark.parametrize("splits", [10, 3, 1])
def test_matches_torch_fidelity(splits, seed):
    x, y = logits(1003, seed=1), logits(997, seed=2, temperature=1.5)
    got = isc(x, y, splits=splits, seed=seed)
    mean, std = torch_fidelity_isc(y, splits, seed)
    reference_mean, _ = torch_fidelity_isc(x, splits, seed)
    assert rel(got["isc"], mean) <= 1e-6 and rel(got["isc_reference"], reference_mean) <= 1e-6
    assert got["isc_std"] == 0.0 if splits == 1 else rel(got["isc_std"], std) <= 1e-6


def test_matches_torch_fidelity_on_peaked_logits():
    x = logits(500, c=1000, seed=3, temperature=12.0)  # near one-hot, probabilities down to ~e^-100
    got = isc(x, x, splits=5, seed=1)
    mean, std = torch_fidelity_isc(x, 5, 1)
    assert rel(got["isc"], mean) <= 1e-6 and rel(got["isc_std"], std) <= 1e-6


def test_known_values():
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(10), 100)
    sharp = 50.0 * np.eye(10)[rng.permutation(labels)]
    flat = np.zeros((1000, 10))
    got = isc(sharp, flat, splits=4)
    assert got["isc"] == pytest.approx(1.0, abs=1e-12)  # no confidence: exp(0)
    assert got["isc_reference"] == pytest.approx(10.0, rel=0.02)  # confident and balanced: ≈ number of classes


def test_keys_input_layer_and_direction():
    x = logits(100)
    assert list(isc(x, x)) == ["isc", "isc_std", "isc_reference"]
    spec = METRICS["isc"]
    assert spec.input == "logits" and spec.higher_is_better


def test_seed_controls_the_shuffle():
    x, y = logits(200, seed=5), logits(200, seed=6)
    assert isc(x, y, seed=3) == isc(x, y, seed=3)
    assert isc(x, y, seed=3)["isc"] != isc(x, y, seed=4)["isc"]
    assert isc(x, y, seed=None) == isc(x, torch.from_numpy(y), seed=None)


def test_splits_clipped_to_the_set_with_warning():
    x, y = logits(50, seed=7), logits(8, seed=8)
    with pytest.warns(ClippedParameterWarning, match="splits=10 is larger than the candidate set \\(8 samples\\)"):
        clipped = isc(x, y, splits=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unclipped = isc(x, y, splits=8)
    assert (clipped["isc"], clipped["isc_std"]) == (unclipped["isc"], unclipped["isc_std"])
    assert clipped["isc_reference"] == isc(x, x, splits=10)["isc"]  # 50 references: 10 splits fit


def test_rejects_bad_parameters():
    x = logits(30)
    with pytest.raises(DsimError, match="splits must be an integer >= 1"):
        isc(x, x, splits=0)
    with pytest.raises(DsimError, match="seed must be an integer >= 0"):
        isc(x, x, seed=-1)
    with pytest.raises(DsimError, match="reference has 50-d features but candidate has 10-d"):
        isc(x, logits(30, c=10))
