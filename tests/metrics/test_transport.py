"""The optimal-transport metrics: emd, sinkhorn, sliced_wasserstein (dsim/metrics/_transport.py) and otdd (_otdd.py).

References: POT's ``ot.emd2`` (ot/lp/_network_simplex.py, ``emd2``) and ``ot.dist`` (ot/utils.py, squared Euclidean by
default), POT's ``ot.sliced_wasserstein_distance`` (ot/sliced.py, its ``projections`` argument), geomloss'
``SamplesLoss("sinkhorn", p=2, debias=True)`` (geomloss/samples_loss.py; cost |x-y|^2 / 2, eps = blur^p), and
Alvarez-Melis & Fusi 2020 eq. (5) with the Gaussian label distance of their section 4 for OTDD.
"""

import itertools

import numpy as np
import ot
import pytest
import torch
from scipy.special import logsumexp

from dsim.errors import DsimError
from dsim.metrics import compute, emd, otdd, sinkhorn, sliced_wasserstein
from dsim.metrics import _transport

RNG = np.random.default_rng(7)


def uniform(n):
    return np.full(n, 1.0 / n)


@pytest.mark.parametrize("n,m,d", [(40, 40, 3), (120, 75, 16), (300, 260, 64)])
def test_emd_equals_pots_emd2_and_its_per_image_costs_average_to_it(n, m, d):
    x, y = RNG.normal(size=(n, d)), RNG.normal(0.4, 1.2, size=(m, d))
    values = emd(x, y)
    expected = ot.emd2(uniform(n), uniform(m), ot.dist(x, y), numItermax=1_000_000)
    assert values["emd"] == pytest.approx(expected, abs=1e-9, rel=0)
    costs = values.per_image["candidate"]["transport_cost"]
    assert costs.shape == (m,) and costs.mean() == pytest.approx(values["emd"], abs=1e-9)


def test_emd_known_properties():
    x = RNG.normal(size=(64, 5))
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    assert emd(x, x)["emd"] == pytest.approx(0, abs=1e-12)
    assert emd(x, x + shift)["emd"] == pytest.approx((shift**2).sum(), rel=1e-12)  # a translation moves every point
    distances = [emd(x, x + RNG.normal(scale=s, size=x.shape))["emd"] for s in (0.1, 0.5, 1.0, 2.0)]
    assert distances == sorted(distances)  # more noise, farther


def test_emd_refuses_a_dense_problem_that_does_not_fit(monkeypatch):
    monkeypatch.setattr(_transport, "MAX_DENSE_PAIRS", 100 * 100)
    x = RNG.normal(size=(101, 2))
    with pytest.raises(DsimError, match=r"emd: 101 x 101 images .*max_samples=4096"):
        emd(x, x)
    sampled = compute("emd", x, x + 1, max_samples=100)  # a seeded sample of each side fits
    assert sampled["emd"] == pytest.approx(2.0, rel=1e-9)


def log_domain_sinkhorn(x, y, eps, iterations=3000):
    """OT_eps(a, b) with cost |x-y|^2 by plain log-domain Sinkhorn (written here, independent of geomloss):
    the dual value <a, f> + <b, g> at the fixed point, geomloss' convention for the entropic OT value."""
    cost = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    log_a, log_b = np.log(uniform(len(x))), np.log(uniform(len(y)))
    f, g = np.zeros(len(x)), np.zeros(len(y))
    for _ in range(iterations):
        f = -eps * logsumexp(log_b[None, :] + (g[None, :] - cost) / eps, axis=1)
        g = -eps * logsumexp(log_a[:, None] + (f[:, None] - cost) / eps, axis=0)
    return f.mean() + g.mean()


def test_sinkhorn_is_the_debiased_divergence_geomloss_and_a_plain_solver_compute():
    from geomloss import SamplesLoss

    x, y = RNG.normal(size=(50, 3)), RNG.normal(0.7, 1.0, size=(40, 3))
    eps = 0.5
    values = sinkhorn(x, y, epsilon=eps, scaling=0.99)  # finer eps-scaling than the default 0.9: nearer the fixed point
    library = 2 * float(SamplesLoss("sinkhorn", p=2, blur=(eps / 2) ** 0.5, scaling=0.99, debias=True)(
        torch.from_numpy(x), torch.from_numpy(y)))
    assert values["sinkhorn"] == pytest.approx(library, rel=1e-12)
    plain = log_domain_sinkhorn(x, y, eps) - 0.5 * log_domain_sinkhorn(x, x, eps) - 0.5 * log_domain_sinkhorn(y, y, eps)
    assert values["sinkhorn"] == pytest.approx(plain, rel=2e-3)
    assert values["sinkhorn_epsilon"] == eps and sinkhorn(x, y, blur=eps**0.5, scaling=0.99)["sinkhorn"] == pytest.approx(
        values["sinkhorn"], rel=1e-12)


def test_sinkhorn_known_properties():
    x = RNG.normal(size=(80, 4))
    assert abs(sinkhorn(x, x, epsilon=0.2)["sinkhorn"]) < 1e-6  # debiased: 0 for identical sets
    values = [sinkhorn(x, x + s, epsilon=0.2)["sinkhorn"] for s in (0.25, 0.5, 1.0, 2.0)]
    assert values == sorted(values) and values[0] > 0
    y = x + RNG.normal(size=x.shape)
    gaps = [abs(sinkhorn(x, y, epsilon=eps)["sinkhorn"] - emd(x, y)["emd"]) for eps in (1.0, 0.1, 0.01)]
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 0.02 * emd(x, y)["emd"]  # eps -> 0: W2^2
    default = sinkhorn(x, x + 1.0)
    assert default["sinkhorn_epsilon"] == pytest.approx(0.01 * 2 * x.var(0).sum(), rel=1e-12)
    costs = default.per_image["candidate"]["transport_cost"]
    assert costs.shape == (80,) and costs.mean() == pytest.approx(default["sinkhorn_transport"], rel=1e-12)
    with pytest.raises(DsimError, match="epsilon or metric.params.blur"):
        sinkhorn(x, x, epsilon=0.1, blur=0.3)



def test_sinkhorn_takes_every_epsilon_its_float32_solver_holds_and_refuses_the_rest():
    x = RNG.normal(size=(50, 4))
    spread = 2 * x.var(0).sum()
    for eps in (1e-30, 1e-3, 1e6 * spread):  # a pure shift of 1 per axis: the divergence is 4 at every epsilon
        assert sinkhorn(x, x + 1, epsilon=eps)["sinkhorn"] == pytest.approx(4.0, rel=1e-6)
    for given in ({"epsilon": 1e-31}, {"epsilon": 1e9 * spread}, {"blur": 1e300}, {"blur": 1e-20}):
        with pytest.raises(DsimError, match="outside"):  # 1e300 squared overflows: one line, not OverflowError
            sinkhorn(x, x + 1, **given)


def test_sliced_wasserstein_refuses_more_projections_than_memory_allows():
    x = RNG.normal(size=(10, 4))
    with pytest.raises(DsimError, match="at most 65536"):
        sliced_wasserstein(x, x, projections=65537)

def test_sinkhorn_per_image_costs_do_not_depend_on_the_chunking(monkeypatch):
    x, y = RNG.normal(size=(70, 3)), RNG.normal(size=(90, 3)) + 0.5
    whole = sinkhorn(x, y, epsilon=0.3).per_image["candidate"]["transport_cost"]
    monkeypatch.setattr(_transport, "CHUNK_ROWS", 7)
    np.testing.assert_allclose(sinkhorn(x, y, epsilon=0.3).per_image["candidate"]["transport_cost"], whole, rtol=1e-12)


def test_sliced_wasserstein_equals_pots_with_the_same_directions():
    x, y = RNG.normal(size=(200, 12)), RNG.normal(0.3, 1.1, size=(150, 12))
    values = sliced_wasserstein(x, y, projections=64, seed=3)
    theta = _transport.unit_directions(12, 64, 3)
    assert np.allclose(np.linalg.norm(theta, axis=0), 1)
    expected = ot.sliced_wasserstein_distance(x, y, p=2, projections=theta) ** 2
    assert values["sliced_wasserstein"] == pytest.approx(expected, rel=1e-12)
    assert sliced_wasserstein(x, y, projections=64, seed=3) == values  # seeded
    assert sliced_wasserstein(x, y, projections=64, seed=4)["sliced_wasserstein"] != values["sliced_wasserstein"]


def test_sliced_wasserstein_known_properties():
    x = RNG.normal(size=(120, 6))
    y = x + RNG.normal(scale=0.8, size=x.shape)
    sliced = sliced_wasserstein(x, y)
    assert 0 < sliced["sliced_wasserstein"] <= emd(x, y)["emd"]  # each projection is 1-Lipschitz
    assert sliced_wasserstein(x, x)["sliced_wasserstein"] == pytest.approx(0, abs=1e-12)
    # equal sizes: rank r meets rank r, so the per-image displacements average to SW2^2 exactly
    costs = sliced.per_image["candidate"]["transport_cost"]
    assert costs.mean() == pytest.approx(sliced["sliced_wasserstein"], rel=1e-9)


def test_otdd_matches_a_case_computed_by_hand():
    # 1-D features. Reference: label a at {0, 2}, b at {10, 12}; candidate: a at {1, 3}, b at {10, 14}.
    # Gaussians (ddof=1): a ~ N(1, 2), b ~ N(11, 2); a' ~ N(2, 2), b' ~ N(12, 8).
    # 1-D W2^2 = (m - m')^2 + (s - s')^2: a-a' 1, b-b' 1 + (sqrt 2 - 2 sqrt 2)^2 = 3, a-b' 123, b-a' 81.
    # With 4 images each and uniform weights the optimal plan is a matching; the best one pairs a with a'
    # (0-1, 2-3: (1+1) + (1+1) = 4) and b with b' (10-10, 12-14: (0+3) + (4+3) = 10): OTDD^2 = 14 / 4.
    x, y = np.array([[0.0], [2.0], [10.0], [12.0]]), np.array([[1.0], [3.0], [10.0], [14.0]])
    labels_x, labels_y = ["a", "a", "b", "b"], ["a", "a", "b", "b"]
    values = otdd(x, y, reference_labels=labels_x, candidate_labels=labels_y)
    assert values["otdd"] == pytest.approx(14 / 4, rel=1e-12)
    assert values["otdd_label_cost"] == pytest.approx((1 + 1 + 3 + 3) / 4, rel=1e-12)
    np.testing.assert_allclose(values.per_image["candidate"]["transport_cost"], [2, 2, 3, 7], rtol=1e-12)
    # the same number by brute force over the 24 matchings, with the hand-derived label costs
    label_cost = {("a", "a"): 1.0, ("a", "b"): 123.0, ("b", "a"): 81.0, ("b", "b"): 3.0}
    best = min(sum((x[i, 0] - y[j, 0]) ** 2 + label_cost[labels_x[i], labels_y[j]] for i, j in enumerate(p)) / 4
               for p in itertools.permutations(range(4)))
    assert best == pytest.approx(values["otdd"], rel=1e-12)


def test_otdd_known_properties():
    x = RNG.normal(size=(60, 4))
    y = RNG.normal(0.5, 1.0, size=(50, 4))
    one_x, one_y = ["only"] * 60, ["one"] * 50
    # one label per side: the label term is the same constant for every pair (W2^2 of the two Gaussians)
    mean_gap = ((x.mean(0) - y.mean(0)) ** 2).sum()
    values = otdd(x, y, reference_labels=one_x, candidate_labels=one_y)
    assert values["otdd"] == pytest.approx(emd(x, y)["emd"] + values["otdd_label_cost"], rel=1e-9)
    assert values["otdd_label_cost"] >= mean_gap - 1e-9
    halves = np.repeat(["a", "b"], 30)
    same = otdd(x, x, reference_labels=halves, candidate_labels=halves)["otdd"]
    mixed = otdd(x, x, reference_labels=halves, candidate_labels=np.roll(halves, 15))["otdd"]
    assert same == pytest.approx(0, abs=1e-9) and mixed > same  # the labels count, not only the features
    with pytest.raises(DsimError, match="no labels for the reference images"):
        otdd(x, y)
    with pytest.raises(DsimError, match="3 candidate labels for 50 candidate images"):
        otdd(x, y, reference_labels=one_x, candidate_labels=["a", "b", "c"])


def test_otdd_intervals_and_samples_keep_each_label_with_its_image():
    x, y = RNG.normal(size=(80, 3)), RNG.normal(0.5, 1.0, size=(70, 3))
    lx, ly = np.arange(80) % 3, np.arange(70) % 2
    values = compute("otdd", x, y, reference_labels=lx, candidate_labels=ly, bootstrap=8)
    assert values["otdd_ci_low"] <= values["otdd"] <= values["otdd_ci_high"]
    sampled = compute("otdd", x, y, reference_labels=lx, candidate_labels=ly, max_samples=40)
    from dsim.metrics.sampling import sample_rows

    rx = sample_rows(80, 40, role="reference")
    ry = sample_rows(70, 40, role="candidate")
    assert sampled["otdd"] == pytest.approx(
        otdd(x[rx], y[ry], reference_labels=lx[rx], candidate_labels=ly[ry])["otdd"], rel=1e-12)


def labelled_folder(root, seed):
    from dsim_testing import write_crops

    for k, label in enumerate(("cracks", "clean")):
        write_crops(root / label, 12, seed=seed + k, size=32)


def test_otdd_and_emd_in_a_cell_with_sub_folder_labels_and_transfer_on_their_costs(tmp_path):
    import json

    import pandas as pd
    from dsim_testing import run_dsim

    labelled_folder(tmp_path / "ref", 1)
    labelled_folder(tmp_path / "cand", 5)
    scores = tmp_path / "scores.csv"
    rows = [f"{label}/{i:03d}.png,{(i * 7 % 12) / 12:.3f}" for label in ("cracks", "clean") for i in range(12)]
    scores.write_text("image,score\n" + "\n".join(rows) + "\n")
    common = ("extractor=pixels", "pair.reference=ref", "pair.candidate=cand", "dataset.root=.", "batch_size=16",
              "progress=false", "device=cpu", f"cache_dir={tmp_path / 'cache'}",
              f"tracking.store_dir={tmp_path / 'mlruns'}")
    run_dsim(*common, "metric=otdd", "analysis=transfer", f"analysis.transfer.scores={scores}",
             "analysis.transfer.distance=metric", "analysis.transfer.bootstrap=20", "hydra.run.dir=otdd", cwd=tmp_path)
    record = json.loads((tmp_path / "otdd" / "result.json").read_text())
    assert record["values"]["reference_labels"] == 2 and record["values"]["candidate_labels"] == 2
    table = pd.read_csv(tmp_path / "otdd" / "artifacts" / "per_image_candidate.csv")
    points = pd.read_csv(tmp_path / "otdd" / "artifacts" / "transfer" / "transfer.csv")
    assert len(table) == 24 and table["transport_cost"].mean() == pytest.approx(record["values"]["otdd"], rel=1e-9)
    by_image = table.set_index("relpath")["transport_cost"]
    assert len(points) == 24 and np.allclose(points["distance"], by_image[points["image"]].to_numpy())
    assert record["values"]["transfer_n"] == 24

    (tmp_path / "flat").mkdir()
    for path in (tmp_path / "cand").rglob("*.png"):
        (tmp_path / "flat" / f"{path.parent.name}_{path.name}").write_bytes(path.read_bytes())
    done = run_dsim(*common[:2], "pair.candidate=flat", *common[3:], "metric=otdd", "hydra.run.dir=flat",
                    cwd=tmp_path, check=False)
    assert done.returncode != 0 and "is not in a sub-folder" in done.stderr and "Traceback" not in done.stderr
    labels = tmp_path / "labels.csv"
    labels.write_text("image,label\n" + "\n".join(f"{p.name},{p.name.split('_')[0]}"
                                                   for p in (tmp_path / "flat").glob("*.png")) + "\n")
    run_dsim(*common[:2], "pair.candidate=flat", *common[3:], "metric=otdd", f"metric.params.labels={labels}",
             "hydra.run.dir=flat", cwd=tmp_path)  # the file labels the flat images, sub-folders the reference's
    flat = json.loads((tmp_path / "flat" / "result.json").read_text())["values"]
    assert flat["otdd"] == pytest.approx(record["values"]["otdd"], rel=1e-9)  # the same images, the same labels
    run_dsim(*common, "metric=emd", "hydra.run.dir=emd", cwd=tmp_path)
    values = json.loads((tmp_path / "emd" / "result.json").read_text())["values"]
    assert 0 < values["emd"] <= record["values"]["otdd"]  # the label term only adds


def test_the_cell_key_follows_the_label_files_content(tmp_path):
    from dsim_testing import cell_config

    from dsim import configs
    from dsim.cell.key import input_files

    labels = tmp_path / "labels.csv"
    labels.write_text("image,label\na.png,x\n")
    config = configs.load(cell_config(tmp_path, ["metric=otdd", f"metric.params.labels={labels}"]))
    first = input_files(config)
    labels.write_text("image,label\na.png,y\n")
    assert set(first) == {"metric_labels"} and input_files(config) != first
    assert input_files(configs.load(cell_config(tmp_path, ["metric=otdd"]))) == {}
