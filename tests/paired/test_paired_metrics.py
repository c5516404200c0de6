"""Paired metrics on in-memory image pairs: PSNR and MS-SSIM numerics, LPIPS weights handling, DreamSim maths."""

import doctest
import importlib

import numpy as np
import pytest
import torch

from dsim.errors import DsimError
from dsim.metrics import METRICS, compute
from dsim.metrics.paired import LpipsNetwork, cosine_distance, dreamsim
from dsim.metrics.paired._lpips import default_trunk_path

RNG = np.random.default_rng(0)


def noisy(images, sigma, seed=1):
    noise = np.random.default_rng(seed).normal(0, sigma, images.shape)
    return np.clip(np.rint(images + noise), 0, 255).astype(np.uint8)


def smooth_images(n=3, size=192):
    """Smooth random colour fields (a noise-free base for graded distortions)."""
    from scipy.ndimage import gaussian_filter

    field = RNG.normal(size=(n, size, size, 3))
    field = gaussian_filter(field, sigma=(0, 6, 6, 0))
    field = (field - field.min()) / (field.max() - field.min())
    return np.rint(field * 255).astype(np.uint8)


@pytest.mark.parametrize("name", sorted(n for n, s in METRICS.items() if s.kind == "paired"))
def test_a_paired_metrics_value_keys_are_its_declared_ones(name):
    from dsim.metrics._registry import pair_summary

    spec = METRICS[name]
    summary = pair_summary(spec, [0.2, 0.5, 0.9])
    assert set(summary) | {"match_distance_mean"} == set(spec.values)  # the cell adds the pairing's distance


def test_paired_metrics_are_registered_with_kind_and_direction():
    paired = {name: spec for name, spec in METRICS.items() if spec.kind == "paired"}
    assert set(paired) == {"psnr", "ms_ssim", "lpips_alex", "lpips_vgg", "lpips_squeeze", "dreamsim"}
    for name, spec in paired.items():
        assert spec.doc and spec.higher_is_better == (name in ("psnr", "ms_ssim"))
        assert (spec.pair_values is not None) != (spec.embedding is not None)  # scores image pairs, or embeddings


@pytest.mark.parametrize("net", ["alex", "vgg", "squeeze"])
def test_lpips_trunk_file_is_torchvisions(net):
    from dsim.metrics.paired._lpips import trunk_file, trunk_url

    assert trunk_url(net).rsplit("/", 1)[-1] == trunk_file(net)


@pytest.mark.parametrize("module", ["dsim.metrics.paired", "dsim.metrics.paired._psnr", "dsim.metrics.paired._ms_ssim",
                                    "dsim.metrics.paired._lpips",
                                    "dsim.metrics.paired._dreamsim", "dsim.cell.pairing", "dsim.embeddings.entropy",
                                    "dsim.analysis.correlation", "dsim.cell.matches"])
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0


def test_psnr_matches_scikit_image_per_pair_and_caps_identical_pairs():
    from skimage.metrics import peak_signal_noise_ratio

    a = RNG.integers(0, 256, size=(4, 40, 30, 3), dtype=np.uint8)
    b = noisy(a, 12)
    values = compute("psnr", a, b)
    expected = [peak_signal_noise_ratio(x, y, data_range=255) for x, y in zip(a, b)]
    np.testing.assert_allclose(values.per_image["candidate"]["psnr"], expected, rtol=1e-12)
    assert values["psnr"] == pytest.approx(np.mean(expected)) and values["psnr_median"] == pytest.approx(np.median(expected))
    assert compute("psnr", a, a)["psnr"] == 100.0
    assert compute("psnr", a, a, max_db=None)["psnr"] == np.inf


def test_pairs_may_differ_in_size_but_the_two_images_of_a_pair_may_not():
    small, large = RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8), RNG.integers(0, 256, (16, 12, 3), dtype=np.uint8)
    assert compute("psnr", [small, large], [small, large])["psnr"] == 100.0
    with pytest.raises(DsimError, match="pair 0 has a 8×8 reference and a 12×16 candidate"):
        compute("psnr", [small], [large])
    with pytest.raises(DsimError, match="uint8"):
        compute("psnr", [small.astype(np.float32)], [small.astype(np.float32)])
    with pytest.raises(DsimError, match="2 reference image"):
        compute("psnr", [small, small], [small])


def test_ms_ssim_is_torchmetrics_on_the_0_1_scale_and_falls_with_noise():
    from torchmetrics.image import MultiScaleStructuralSimilarityIndexMeasure

    a = smooth_images(2, size=176)
    levels = [compute("ms_ssim", a, noisy(a, s))["ms_ssim"] for s in (4, 32)]
    assert compute("ms_ssim", a, a)["ms_ssim"] == pytest.approx(1.0, abs=1e-9)
    assert 1.0 > levels[0] > levels[1] > 0.0
    b = noisy(a, 8)
    reference = MultiScaleStructuralSimilarityIndexMeasure(data_range=1.0, reduction="none")
    expected = reference(torch.from_numpy(b).permute(0, 3, 1, 2).float() / 255,
                         torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255)
    np.testing.assert_allclose(compute("ms_ssim", a, b).per_image["candidate"]["ms_ssim"], expected.numpy(), rtol=1e-5)


def test_ms_ssim_says_how_large_images_must_be():
    a = RNG.integers(0, 256, (1, 128, 128, 3), dtype=np.uint8)
    with pytest.raises(DsimError, match=r"at least 176 px.*pairing.size=176"):
        compute("ms_ssim", a, a)
    assert compute("ms_ssim", a, a, kernel_size=7)["ms_ssim"] == pytest.approx(1.0)


def test_lpips_with_random_trunk_is_zero_for_identical_images_and_grows_with_noise():
    a = smooth_images(2, size=64)
    values = [compute("lpips_alex", a, noisy(a, s), weights="random")["lpips_alex"] for s in (0, 8, 32)]
    assert values[0] == pytest.approx(0.0, abs=1e-7) and values[0] < values[1] < values[2]
    network = LpipsNetwork("alex", weights="random")
    assert network.is_random and network.resolved_weights.checksum.startswith("random")


def test_lpips_default_weights_missing_is_one_line_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    expected = tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    assert default_trunk_path("alex") == expected
    with pytest.raises(DsimError) as error:
        LpipsNetwork("alex").resolved_weights
    message = str(error.value)
    assert "\n" not in message and str(expected) in message and "download.pytorch.org" in message
    assert "metric.params.weights=PATH" in message
    with pytest.raises(DsimError, match="not found"):
        LpipsNetwork("squeeze", weights=str(tmp_path / "nope.pth")).resolved_weights
    with pytest.raises(DsimError, match="unknown net"):
        LpipsNetwork("resnet")


@pytest.mark.parametrize("net, arch", [("alex", "alexnet"), ("squeeze", "squeezenet1_1")])
def test_lpips_checks_the_hub_file_and_loads_a_torchvision_trunk_from_a_path(tmp_path, monkeypatch, net, arch):
    import torchvision

    torch.manual_seed(123)
    state = getattr(torchvision.models, arch)().state_dict()       # a stand-in for the ImageNet checkpoint
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    cached = default_trunk_path(net)
    cached.parent.mkdir(parents=True)
    torch.save(state, cached)

    with pytest.raises(DsimError, match="wrong checksum.*its name says"):  # the hash prefix of the hub file name
        LpipsNetwork(net).resolved_weights
    local = tmp_path / "trunk.pth"
    cached.rename(local)
    by_path = LpipsNetwork(net, weights=str(local))                   # weights=PATH: any file of that trunk
    assert by_path.resolved_weights.kind == "file" and by_path.resolved_weights.path == local.resolve()
    model = by_path.load("cpu")
    for key, value in model.net.state_dict().items():
        torch.testing.assert_close(value, state["features." + key.split(".", 1)[1]])
    assert by_path.identity != LpipsNetwork(net, weights="random").identity

    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(DsimError, match="not a torchvision checkpoint of this trunk"):
        LpipsNetwork(net, weights=str(tmp_path / "wrong.pth")).load("cpu")


def test_dreamsim_distance_is_one_minus_cosine():
    a, b = RNG.normal(size=(5, 16)), RNG.normal(size=(5, 16))
    expected = 1 - (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    np.testing.assert_allclose(cosine_distance(a, b), expected, rtol=1e-12)
    np.testing.assert_allclose(cosine_distance(a, 3 * a), 0.0, atol=1e-12)
    assert METRICS["dreamsim"].embedding == "dreamsim" and not METRICS["dreamsim"].aligned
    values = dreamsim(a, b)
    assert values["dreamsim"] == pytest.approx(expected.mean()) and values["n_pairs"] == 5


def test_paired_summary_has_bootstrap_intervals_over_pairs():
    from dsim.metrics._registry import pair_summary

    values = RNG.normal(30.0, 3.0, size=200)
    summary = pair_summary(METRICS["psnr"], values, bootstrap=200, bootstrap_seed=1)
    assert summary["psnr"] == pytest.approx(values.mean()) and summary["n_pairs"] == 200
    assert summary["psnr_ci_low"] < summary["psnr"] < summary["psnr_ci_high"]
    # the mean's 95% interval is about ±1.96 standard errors wide
    assert summary["psnr_ci_high"] - summary["psnr_ci_low"] == pytest.approx(2 * 1.96 * values.std() / np.sqrt(200),
                                                                             rel=0.25)
    assert "n_pairs_ci_low" not in summary  # counts get no interval
    assert pair_summary(METRICS["psnr"], values, bootstrap=200, bootstrap_seed=1) == summary
