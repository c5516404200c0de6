"""fd_inf, vendi and authpct: analytic cases and their definitions (Chong & Forsyth; Friedman & Dieng; Alaa et al.)."""

import numpy as np
import pytest
import torch

from dsim.errors import DsimError
from dsim.metrics import authpct, compute, fd_inf, fid, fid_from_stats, vendi


def test_fd_inf_is_closer_than_fid_to_the_analytic_distance_at_small_n():
    """N(0, I) vs N(0.1·1, I) in 32-d: analytic FD 0.32. With 300 candidates FID's 1/N bias dominates;
    the extrapolation to N = ∞ removes most of it."""
    d, shift = 32, 0.1
    analytic = fid_from_stats(np.zeros(d), np.eye(d), np.full(d, shift), np.eye(d))
    assert analytic == pytest.approx(d * shift ** 2)
    fid_errors, inf_errors = [], []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        reference, candidate = rng.normal(size=(20000, d)), rng.normal(shift, 1.0, size=(300, d))
        out = fd_inf(reference, candidate, seed=seed)
        assert out["fid"] == pytest.approx(fid(reference, candidate)["fid"], rel=1e-9)  # the full-N point
        fid_errors.append(abs(out["fid"] - analytic))
        inf_errors.append(abs(out["fd_inf"] - analytic))
        assert out["fd_inf_slope"] > 0  # FID falls towards FD∞ as N grows
    # measured: mean error 0.35 against FID's 1.06 (six draws)
    assert np.mean(inf_errors) < 0.5 * np.mean(fid_errors), (np.mean(inf_errors), np.mean(fid_errors))


def test_fd_inf_recovers_an_exact_one_over_n_law():
    """Features whose subset FID is exactly a + b/N are not at hand; check the fit itself instead: sizes,
    intercept and slope of a least-squares line, recomputed from the same subsets."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(400, 4)), rng.normal(0.5, 1.0, size=(200, 4))
    out = compute("fd_inf", x, y, num_points=5, min_fraction=0.5, seed=9)
    sizes = np.unique(np.linspace(100, 200, 5).astype(int))
    draw = np.random.default_rng(9)
    fids = [fid(x, y[np.sort(draw.choice(200, size=s, replace=False))])["fid"] for s in sizes]
    slope, intercept = np.polyfit(1 / sizes, fids, 1)
    assert out["fd_inf"] == pytest.approx(intercept, rel=1e-9) and out["fd_inf_slope"] == pytest.approx(slope, rel=1e-9)
    assert out["fd_inf_points"] == 5
    with pytest.raises(DsimError, match="fewer than 2 distinct subset sizes"):
        fd_inf(x, y[:2])


def test_vendi_counts_effective_distinct_samples():
    eye = np.eye(16)
    assert vendi(eye, np.repeat(eye[:1], 10, axis=0))["vendi"] == pytest.approx(1.0)  # ten copies of one
    assert vendi(eye, eye)["vendi"] == pytest.approx(16.0)  # sixteen orthogonal samples
    clusters = np.repeat(eye[:4], 25, axis=0) * np.linspace(1, 3, 100)[:, None]  # 4 directions, scaled: cosine
    out = vendi(eye, clusters)
    assert out["vendi"] == pytest.approx(4.0) and out["vendi_reference"] == pytest.approx(16.0)
    assert out["vendi_ratio"] == pytest.approx(0.25)
    assert vendi(eye, clusters, q=2.0)["vendi"] == pytest.approx(4.0)  # equal clusters: every order agrees
    rng = np.random.default_rng(0)
    few = rng.normal(size=(40, 64))  # n < D: the n×n kernel's spectrum, computed here directly
    unit = few / np.linalg.norm(few, axis=1, keepdims=True)
    lam = np.linalg.eigvalsh(unit @ unit.T / 40)
    lam = lam[lam > 1e-15] / lam[lam > 1e-15].sum()
    assert vendi(eye[:2, :2], eye[:2, :2])["vendi"] == pytest.approx(2.0)
    assert vendi(few, few)["vendi"] == pytest.approx(float(np.exp(-(lam * np.log(lam)).sum())), rel=1e-9)


def _dgm_eval_authpct(train, gen):
    """dgm-eval's definition, written out with full distance matrices."""
    train, gen = torch.tensor(train), torch.tensor(gen)
    real = torch.cdist(train, train)
    real.fill_diagonal_(float("inf"))
    real_min = real.min(dim=0).values
    gen_min = torch.cdist(train, gen).min(dim=0)
    return float(100 * (real_min[gen_min.indices] < gen_min.values).double().mean())


def test_authpct_matches_its_definition_and_flags_copies():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(2500, 6))  # more rows than a chunk: the chunked search is exercised
    candidate = np.concatenate([reference[:200] + 1e-4, rng.normal(size=(300, 6))])  # 200 near-copies, 300 new
    out = authpct(reference, candidate)
    assert out["authpct"] == pytest.approx(_dgm_eval_authpct(reference, candidate), abs=1e-12)
    flags = out.per_image["candidate"]["authentic"]
    assert not flags[:200].any() and 0.3 < flags[200:].mean() < 1.0
    assert authpct(reference, reference[:50] + 1e-6)["authpct"] == 0.0
    assert authpct(reference, rng.normal(size=(40, 6)) + 50)["authpct"] == 100.0  # far away: never a copy
