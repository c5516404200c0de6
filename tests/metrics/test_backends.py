"""The two code paths: NumPy for CPU tensors (the default) and torch (other devices; forced here on CPU)."""

import numpy as np
import pytest
import torch

import dsim.metrics._linalg as linalg
from dsim.metrics import compute

RNG = np.random.default_rng(0)
X, Y = RNG.normal(size=(160, 12)), RNG.normal(0.4, 1.1, size=(140, 12))
PARAMS = {
    "fid": {}, "kid_poly": dict(subsets=6, subset_size=60), "kid_rbf": dict(subsets=6, subset_size=60, sigma=3.0),
    "cmmd": dict(sigma=2.0), "prdc": {}, "isc": dict(splits=4), "odist": dict(n_components=5),
}


def run(name, device="cpu"):
    x, y = (torch.from_numpy(a).to(device) for a in (X, Y))
    return compute(name, x, y, device=device, **PARAMS[name])


def assert_close(a, b, rel=1e-9):
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], rel=rel, abs=1e-12), key
    assert a.per_image.keys() == b.per_image.keys()
    for side in a.per_image:
        for col in a.per_image[side]:
            np.testing.assert_allclose(a.per_image[side][col], b.per_image[side][col], rtol=rel, atol=1e-12)


@pytest.mark.parametrize("name", PARAMS)
def test_torch_path_matches_numpy_path(name, monkeypatch):
    expected = run(name)
    monkeypatch.setattr(linalg, "NUMPY_ON_CPU", False)
    got = run(name)
    assert_close(got, expected)
    if name == "prdc":  # flags are exact on either path
        assert dict(got) == dict(expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", PARAMS)
def test_cuda_matches_cpu(name):
    assert_close(run(name, "cuda"), run(name), rel=1e-8)
