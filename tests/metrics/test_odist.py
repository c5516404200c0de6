"""O_dist: parity with a direct SVD + cdist transcription, per-image I_dist, clipping, signs, chunking."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

import dsim.metrics._odist as odist_module
from dsim.errors import DsimError
from dsim.metrics import ClippedParameterWarning, odist


def transcription(x, y, n_components=25):
    """The paper's recipe, written out: PCA of the union by SVD, then summed Euclidean distances."""
    union = np.vstack([x, y])
    mean = union.mean(0)
    _, _, vt = np.linalg.svd(union - mean, full_matrices=False)
    px, py = (x - mean) @ vt[:n_components].T, (y - mean) @ vt[:n_components].T
    i_dist = cdist(py, px).sum(1)
    return i_dist.mean(), i_dist


def structured(n, d, seed, shift=0.0, rank=30):
    """Features with a decaying spectrum (a clear gap after each component), so the PCA is well-posed."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(np.random.default_rng(99).normal(size=(d, d)))[0][:rank]
    scales = 10.0 * 0.85 ** np.arange(rank)
    return (rng.normal(size=(n, rank)) * scales) @ basis + 0.01 * rng.normal(size=(n, d)) + shift


CASES = {
    "tall_union": (structured(300, 64, 1), structured(250, 64, 2, shift=0.3), 25),  # n > D: Gram route
    "wide_union": (structured(20, 256, 3), structured(25, 256, 4, shift=0.1), 25),  # n <= D: SVD route
    "few_components": (structured(200, 40, 5), structured(180, 40, 6, shift=-0.5), 3),
    "one_component": (structured(100, 8, 7, rank=8), structured(90, 8, 8, shift=1.0, rank=8), 1),
}


@pytest.mark.parametrize("case", CASES)
def test_matches_transcription(case):
    x, y, k = CASES[case]
    expected, expected_i = transcription(x, y, k)
    got = odist(x, y, n_components=k)
    assert abs(got["odist"] - expected) <= 1e-6 * expected
    np.testing.assert_allclose(got.per_image["candidate"]["i_dist"], expected_i, rtol=1e-6)


def test_per_image_i_dist_is_aligned_with_the_candidate_rows():
    x, y, _ = CASES["tall_union"]
    got = odist(x, y)
    i_dist = got.per_image["candidate"]["i_dist"]
    assert list(got) == ["odist"] and list(got.per_image) == ["candidate"] and i_dist.shape == (len(y),)
    assert got["odist"] == pytest.approx(i_dist.mean(), rel=1e-15)
    moved = odist(x, np.vstack([y[:5], y[5:6] + 100.0, y[6:]])).per_image["candidate"]["i_dist"]
    assert np.argmax(moved) == 5


def test_grows_with_shift_and_is_not_zero_for_identical_sets():
    x = structured(200, 32, 9)
    y = structured(200, 32, 10)
    values = [odist(x, y + shift)["odist"] for shift in (0.0, 1.0, 3.0, 10.0)]
    assert all(a < b for a, b in zip(values, values[1:])), values
    same = odist(x, x.copy())["odist"]
    assert same > 0 and same == pytest.approx(np.mean(cdist(x, x).sum(1)), rel=0.05)  # ~ mean summed distance


def test_components_clipped_with_warning():
    x, y = structured(6, 10, 11, rank=5), structured(5, 10, 12, rank=5)
    with pytest.warns(ClippedParameterWarning, match="n_components=25 is larger than .*min\\(11 samples, 10 dim"):
        clipped = odist(x, y)
    assert clipped == odist(x, y, n_components=10)


def test_axes_have_a_deterministic_sign():
    x, y, _ = CASES["tall_union"]
    centred = torch.from_numpy(np.vstack([x, y]))
    centred = centred - centred.mean(0)
    for data in (centred, -centred):
        axes = odist_module.principal_axes(data, 5)
        largest = axes.abs().argmax(1)
        assert (axes[torch.arange(5), largest] > 0).all()
        np.testing.assert_allclose(axes @ axes.T, np.eye(5), atol=1e-10)
    a, b = odist_module.principal_axes(centred, 5), odist_module.principal_axes(-centred, 5)
    np.testing.assert_allclose(a, b, atol=1e-9)


def test_same_bits_whatever_the_chunking(monkeypatch):
    x, y, _ = CASES["tall_union"]
    expected = odist(x, y)
    for chunk_bytes in (1, 8 * 300 * 7, 2**40):  # 1 row, 7 rows, all rows per chunk
        monkeypatch.setattr(odist_module, "CHUNK_BYTES", chunk_bytes)
        got = odist(x, torch.from_numpy(y))
        assert got == expected
        np.testing.assert_array_equal(got.per_image["candidate"]["i_dist"], expected.per_image["candidate"]["i_dist"])


def test_rejects_bad_parameters():
    x, y, _ = CASES["few_components"]
    with pytest.raises(DsimError, match="n_components must be an integer >= 1"):
        odist(x, y, n_components=0)
