"""KID: parity with torch-fidelity (values and subsets), clipping, validation, determinism."""

import numpy as np
import pytest
import torch

import dsim.metrics._linalg as linalg
import dsim.metrics._mmd as mmd
from dsim.errors import DsimError
from dsim.metrics import SubsetSizeWarning, kid_poly, kid_rbf

SUBSETS = dict(subsets=20, subset_size=200, seed=7)

# (our function, our kernel params, torch-fidelity kernel name, torch-fidelity kwargs)
KERNELS = {
    "poly_default": (kid_poly, {}, "poly", dict(kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
                                                 kid_kernel_poly_coef0=1.0)),
    "poly_custom": (kid_poly, dict(degree=2, gamma=0.01, coef0=0.5), "poly",
                    dict(kid_kernel_poly_degree=2, kid_kernel_poly_gamma=0.01, kid_kernel_poly_coef0=0.5)),
    "rbf_default": (kid_rbf, {}, "rbf", dict(kid_kernel_rbf_sigma=10.0)),
    "rbf_narrow": (kid_rbf, dict(sigma=3.0), "rbf", dict(kid_kernel_rbf_sigma=3.0)),
}


def features(n, d=32, seed=0, shift=0.0, scale=1.0):
    return np.random.default_rng(seed).normal(shift, scale, size=(n, d))


def pair():
    return features(400, seed=1), features(350, seed=2, shift=0.2, scale=1.2)


def torch_fidelity_kid(x, y, kernel, kernel_kwargs, subsets, subset_size, seed):
    tf = pytest.importorskip("torch_fidelity.metric_kid")
    out = tf.kid_features_to_metric(
        torch.from_numpy(x), torch.from_numpy(y), kid_subsets=subsets, kid_subset_size=subset_size,
        rng_seed=seed, verbose=False, kid_kernel=kernel, **kernel_kwargs,
    )
    return out[tf.KEY_METRIC_KID_MEAN], out[tf.KEY_METRIC_KID_STD]


PATHS = {"per_subset": False, "full_kernels": True}


@pytest.fixture(params=list(PATHS))
def path(request, monkeypatch):
    """Run a test once per evaluation path (per-subset kernels, or full kernels summed per subset)."""
    monkeypatch.setattr(mmd, "FULL_KERNELS", PATHS[request.param])
    return request.param


@pytest.mark.parametrize("case", KERNELS)
def test_matches_torch_fidelity(case, path):
    fn, params, kernel, tf_kwargs = KERNELS[case]
    x, y = pair()
    mean, std = torch_fidelity_kid(x, y, kernel, tf_kwargs, **SUBSETS)
    got = list(fn(x, y, **SUBSETS, **params).values())
    assert abs(got[0] - mean) <= 1e-6 * abs(mean)
    assert abs(got[1] - std) <= 1e-6 * abs(std)


@pytest.mark.parametrize("fn", [kid_poly, kid_rbf])
def test_both_paths_agree(fn, monkeypatch):
    x, y = pair()
    monkeypatch.setattr(mmd, "FULL_KERNELS", False)
    per_subset = fn(x, y, **SUBSETS)
    monkeypatch.setattr(mmd, "FULL_KERNELS", True)
    assert list(fn(x, y, **SUBSETS).values()) == pytest.approx(list(per_subset.values()), rel=1e-12)


def test_cost_model_picks_the_cheaper_path(monkeypatch):
    chosen = []
    full = mmd._mmd2_from_full_kernels
    monkeypatch.setattr(mmd, "_mmd2_from_full_kernels", lambda *a: chosen.append("full") or full(*a))
    kid_poly(features(300), features(300), subsets=100, subset_size=200)  # 1.8e5·132 < 2·100·4e4·32
    kid_poly(features(3000, d=8), features(3000, d=8), subsets=2, subset_size=100)  # 1.8e7·10 > 2·2·1e4·8
    assert chosen == ["full"]


@pytest.mark.parametrize("chunk_bytes", [1, 8 * 2 * 50 * 7, 2**40])  # 1, 7 or all rows per block
def test_kernel_blocks_cover_the_matrix_once(chunk_bytes):
    x, y = features(50, d=4), features(30, d=4, seed=3)
    kernel = lambda p, q: p @ q.T  # noqa: E731
    for p, q in ((x, x), (x, y)):
        full = kernel(p, q)
        formed, total = np.zeros(full.shape, dtype=int), 0.0
        for rows, cols, block in mmd.kernel_blocks(p, q, kernel, chunk_bytes=chunk_bytes):
            doubled = 2 if q is p and rows != cols else 1  # stands for its mirror block, never formed
            np.testing.assert_allclose(block, doubled * full[rows, cols], rtol=1e-12, atol=1e-12)
            formed[rows, cols] += 1
            total += block.sum()
        assert total == pytest.approx(full.sum(), rel=1e-12)
        if q is p:  # each entry on or above the diagonal once; below it only inside the diagonal blocks
            np.testing.assert_array_equal(np.triu(formed), np.triu(np.ones_like(formed)))
            rows, n = max(1, chunk_bytes // (8 * 2 * len(q))), len(p)
            assert formed.sum() <= n * (n + rows) // 2
        else:
            np.testing.assert_array_equal(formed, 1)


def test_subsets_equal_torch_fidelity(monkeypatch):
    tf = pytest.importorskip("torch_fidelity.metric_kid")
    x, y = pair()
    seen = []
    real = tf.kernel_mmd
    monkeypatch.setattr(tf, "kernel_mmd", lambda f1, f2, **kw: seen.append((f1, f2)) or real(f1, f2, **kw))
    torch_fidelity_kid(x, y, "poly", {}, **SUBSETS)
    idx_x, idx_y = mmd.subset_indices(len(x), len(y), SUBSETS["subsets"], SUBSETS["subset_size"], SUBSETS["seed"])
    assert len(seen) == SUBSETS["subsets"]
    for (f1, f2), ix, iy in zip(seen, idx_x, idx_y):
        np.testing.assert_array_equal(f1, x[ix])
        np.testing.assert_array_equal(f2, y[iy])


def test_result_keys_and_types():
    x, y = pair()
    assert list(kid_poly(x, y, **SUBSETS)) == ["kid_poly", "kid_poly_std"]
    assert list(kid_rbf(x, y, **SUBSETS)) == ["kid_rbf", "kid_rbf_std"]
    assert all(type(v) is float for v in kid_rbf(x, y, **SUBSETS).values())


def test_distant_sets_score_higher():
    x = features(300, seed=3)
    near, far = features(300, seed=4), features(300, seed=5, shift=1.0)
    for fn in (kid_poly, kid_rbf):
        assert list(fn(x, far, **SUBSETS).values())[0] > 10 * abs(list(fn(x, near, **SUBSETS).values())[0])


def test_single_subset_has_zero_std():
    x, y = pair()
    assert kid_poly(x, y, subsets=1, subset_size=100)["kid_poly_std"] == 0.0


@pytest.mark.parametrize("fn", [kid_poly, kid_rbf])
def test_subset_size_clipped_with_warning(fn):
    x, y = features(300, seed=1), features(250, seed=2)
    with pytest.warns(SubsetSizeWarning, match="subset_size 1000 .*reference 300, candidate 250.*subset_size=250"):
        clipped = fn(x, y, subsets=5, subset_size=1000)
    assert clipped == fn(x, y, subsets=5, subset_size=250)


@pytest.mark.parametrize("fn", [kid_poly, kid_rbf])
def test_rejects_bad_inputs(fn):
    x = features(50)
    with pytest.raises(DsimError, match="candidate set has 1 sample"):
        fn(x, x[:1])
    with pytest.raises(DsimError, match="reference has 32-d features but candidate has 16-d"):
        fn(x, features(50, d=16))
    for bad in (np.nan, np.inf):
        y = x.copy()
        y[3, 4] = bad
        with pytest.raises(DsimError, match="1 non-finite value"):
            fn(x, y)
    with pytest.raises(DsimError, match="2-D array"):
        fn(x[0], x)
    with pytest.raises(DsimError, match="subsets must be an integer >= 1"):
        fn(x, x, subsets=0)
    with pytest.raises(DsimError, match="subset_size must be an integer >= 2"):
        fn(x, x, subset_size=1)


def test_rejects_bad_kernel_params():
    x = features(50)
    with pytest.raises(DsimError, match="kernel_dtype must be one of float64, float32; got 'float16'"):
        kid_poly(x, x, kernel_dtype="float16")
    with pytest.raises(DsimError, match="sigma must be a positive number"):
        kid_rbf(x, x, sigma=0)
    with pytest.raises(DsimError, match="degree must be an integer"):
        kid_poly(x, x, degree=2.5)


@pytest.mark.parametrize("kernel_dtype", ["float64", "float32"])
@pytest.mark.parametrize("fn", [kid_poly, kid_rbf])
def test_same_numbers_whatever_the_chunking(fn, kernel_dtype, path, monkeypatch):
    x, y = pair()
    results = []
    for chunk_bytes in (1, 3 * 8 * (4 * 200 * 200 + 2 * 200 * 32), 2**40):  # 1, 3, all subsets (or rows) per chunk
        monkeypatch.setattr(mmd, "CHUNK_BYTES", chunk_bytes)
        results.append(fn(x, y, **SUBSETS, kernel_dtype=kernel_dtype))
        results.append(fn(torch.from_numpy(x), y, **SUBSETS, kernel_dtype=kernel_dtype, device=torch.device("cpu")))
    if path == "per_subset":  # each subset on its own: the same bits
        assert all(r == results[0] for r in results)
    else:  # kernel rows summed chunk by chunk: the same up to rounding (of float32 products, for float32)
        tolerance = dict(rel=1e-12) if kernel_dtype == "float64" else dict(rel=1e-6, abs=1e-10)
        assert all(list(r.values()) == pytest.approx(list(results[0].values()), **tolerance) for r in results)
    assert fn(x, y, **{**SUBSETS, "seed": 8}, kernel_dtype=kernel_dtype) != results[0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("fn", [kid_poly, kid_rbf])
def test_cuda_matches_cpu(fn):
    x, y = pair()
    on_cpu, on_cuda = fn(x, y, **SUBSETS), fn(x, y, **SUBSETS, device="cuda")
    assert list(on_cuda.values()) == pytest.approx(list(on_cpu.values()), rel=1e-9)
    x32, y32 = near_pair_float32()
    subsets = dict(subsets=4, subset_size=1000, seed=0)
    exact = fn(x32, y32, **subsets)
    for device in ("cpu", "cuda"):  # float32 products on the GPU: TF32 off, so within float32 rounding
        fast = fn(x32, y32, **subsets, kernel_dtype="float32", device=device)
        assert max(abs(a - b) for a, b in zip(fast.values(), exact.values())) <= 1e-9


@pytest.mark.parametrize("degree", [1, 2, 3, 4])
@pytest.mark.parametrize("coef0", [1.0, 0.5, 0.0])
def test_polynomial_kernel_minus_one_is_the_kernel_minus_one(degree, coef0):
    x, y = features(30, d=8, seed=1), features(20, d=8, seed=2)
    direct = (x @ y.T * 0.1 + coef0) ** degree - 1
    for p, q, expected in ((x, y, direct), (x, x, (x @ x.T * 0.1 + coef0) ** degree - 1)):
        got = mmd.polynomial_kernel_minus_one(p, q, degree=degree, gamma=0.1, coef0=coef0)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def near_pair_float32(n=1200, d=128):
    """Two large float32 samples of one distribution: KID ≈ 0, where float32 sums lose the most."""
    mixing = np.random.default_rng(9).normal(size=(d, d)) / np.sqrt(d)
    x, y = (np.random.default_rng(seed).normal(size=(n, d)) @ mixing + 0.3 for seed in (10, 11))
    return x.astype(np.float32), y.astype(np.float32)


@pytest.mark.parametrize("case", ["poly_default", "rbf_default"])
def test_float32_kernels_sum_in_float64(case, path):
    """float32 kernels cost only their own rounding: far closer to float64 than an all-float32 evaluation."""
    fn, params, kernel, tf_kwargs = KERNELS[case]
    x, y = near_pair_float32()
    subsets = dict(subsets=4, subset_size=1000, seed=0)
    exact = fn(x, y, **subsets, **params)
    fast = fn(x, y, **subsets, **params, kernel_dtype="float32")
    error = max(abs(a - b) for a, b in zip(fast.values(), exact.values()))
    assert error <= 1e-9  # measured 3.7e-10 (poly), 2.5e-11 (RBF), on KID ≈ 2e-3 and 2e-4
    if kernel == "poly":  # torch-fidelity on float32 features: kernels and sums in float32 (its RBF sums in float64)
        all_float32, _ = torch_fidelity_kid(x, y, kernel, tf_kwargs, **subsets)
        assert abs(all_float32 - exact[fn.__name__]) > 20 * error


@pytest.mark.parametrize("fn", [kid_poly, kid_rbf])
def test_float32_torch_path_matches_numpy_path(fn, path, monkeypatch):
    x, y = pair()
    on_numpy = fn(x, y, **SUBSETS, kernel_dtype="float32")
    monkeypatch.setattr(linalg, "NUMPY_ON_CPU", False)
    on_torch = fn(x, y, **SUBSETS, kernel_dtype="float32")
    assert list(on_torch.values()) == pytest.approx(list(on_numpy.values()), rel=1e-6, abs=1e-9)


def test_float32_products_turn_tf32_off_and_restore_it(monkeypatch):
    matmul = torch.backends.cuda.matmul  # attributes behind __getattr__: set and restored by hand
    new_api = hasattr(matmul, "fp32_precision")
    name, on, off = ("fp32_precision", "tf32", "ieee") if new_api else ("allow_tf32", True, False)
    before = getattr(matmul, name)
    seen = []
    real = mmd.mm_nt
    monkeypatch.setattr(mmd, "mm_nt", lambda a, b: seen.append(getattr(matmul, name)) or real(a, b))
    x, y = pair()
    try:
        setattr(matmul, name, on)
        kid_poly(x, y, **SUBSETS, kernel_dtype="float32")
        assert set(seen) == {off}
        assert getattr(matmul, name) == on
        seen.clear()
        kid_poly(x, y, **SUBSETS)  # float64 products: TF32 does not apply, the setting is left alone
        assert set(seen) == {on}
    finally:
        setattr(matmul, name, before)
