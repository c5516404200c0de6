"""CMMD: parity with a direct NumPy transcription of the published formula, properties, chunking, guards."""

import numpy as np
import pytest
import torch

import dsim.metrics._cmmd as cmmd_module
from dsim.errors import DsimError
from dsim.metrics import cmmd


def published_cmmd(x, y, sigma=10.0, scale=1000.0):
    """google-research/cmmd ``distance.mmd``, transcribed to NumPy float64, on L2-normalised embeddings."""
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    x_sqnorms = np.diag(x @ x.T)
    y_sqnorms = np.diag(y @ y.T)
    gamma = 1 / (2 * sigma**2)
    k_xx = np.mean(np.exp(-gamma * (-2 * (x @ x.T) + x_sqnorms[:, None] + x_sqnorms[None, :])))
    k_xy = np.mean(np.exp(-gamma * (-2 * (x @ y.T) + x_sqnorms[:, None] + y_sqnorms[None, :])))
    k_yy = np.mean(np.exp(-gamma * (-2 * (y @ y.T) + y_sqnorms[:, None] + y_sqnorms[None, :])))
    return scale * (k_xx + k_yy - 2 * k_xy)


def embeddings(n, d=32, seed=0, shift=0.0, scale=1.0):
    return np.random.default_rng(seed).normal(shift, scale, size=(n, d))


CASES = {
    "default": (embeddings(300, seed=1), embeddings(250, seed=2, shift=0.2), {}),
    "clip_like": (embeddings(200, d=512, seed=3), embeddings(220, d=512, seed=4, shift=0.05, scale=1.3), {}),
    "narrow_sigma": (embeddings(150, seed=5), embeddings(150, seed=6, shift=0.5), dict(sigma=0.5, scale=1.0)),
    "positive": (np.abs(embeddings(100, seed=7)), np.abs(embeddings(120, seed=8, scale=2.0)), dict(sigma=3.0)),
}


@pytest.mark.parametrize("case", CASES)
def test_matches_published_formula(case):
    x, y, params = CASES[case]
    expected = published_cmmd(x, y, **params)
    got = cmmd(x, y, **params)["cmmd"]
    assert abs(got - expected) <= 1e-6 * abs(expected)


def test_identical_sets_give_zero():
    x = embeddings(400, seed=9)
    value = cmmd(x, x.copy())["cmmd"]
    assert type(value) is float and abs(value) < 1e-9


def test_grows_with_shift():
    x, y = embeddings(300, seed=10), embeddings(300, seed=11)
    values = [cmmd(x, y + shift)["cmmd"] for shift in (0.0, 0.1, 0.3, 1.0)]
    assert all(a < b for a, b in zip(values, values[1:])), values


def test_only_directions_matter():
    x, y = CASES["default"][:2]
    assert cmmd(3.0 * x, 0.5 * y)["cmmd"] == pytest.approx(cmmd(x, y)["cmmd"], rel=1e-12)


def test_chunking_changes_nothing_but_rounding(monkeypatch):
    x, y = CASES["default"][:2]
    expected = cmmd(x, y)["cmmd"]
    for chunk_bytes in (1, 8 * 2 * 300 * 7, 2**40):
        monkeypatch.setattr(cmmd_module, "CHUNK_BYTES", chunk_bytes)
        assert cmmd(x, y)["cmmd"] == pytest.approx(expected, rel=1e-12)
        assert cmmd(x, torch.from_numpy(y))["cmmd"] == cmmd(x, y)["cmmd"]


def test_rejects_zero_rows_and_bad_parameters():
    x, y = CASES["default"][:2]
    y = y.copy()
    y[[4, 7]] = 0
    with pytest.raises(DsimError, match="candidate row 4 \\(and 1 more\\) is all zeros"):
        cmmd(x, y)
    with pytest.raises(DsimError, match="sigma must be a positive number"):
        cmmd(x, x, sigma=-1)
    with pytest.raises(DsimError, match="scale must be a positive number"):
        cmmd(x, x, scale=0)
