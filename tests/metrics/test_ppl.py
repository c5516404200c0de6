"""PPL: parity with torch-fidelity (same generator, latents and LPIPS-VGG network), and its known properties."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dsim.errors import DsimError
from dsim.generators import Generator, GeneratorSpec
from dsim.metrics import compute, lookup, ppl
from dsim.metrics.paired._lpips import LpipsNetwork
from dsim.metrics._ppl import centre_crop, path_lengths, ppl_latents, resized, slerp, trim_mask

sys.path.insert(0, str(Path(__file__).parents[1] / "generators"))  # gen_models: a project's own generators

TOY = {"name": "toy", "_target_": "dsim.generators.toy.ToyGenerator",
       "params": {"z_dim": 16, "w_dim": 16, "resolution": 32, "channels": 16}}


def toy(**over):
    return GeneratorSpec.from_config({**TOY, **over})


class Scaled(torch.nn.Module):
    """The toy generator's images as torch-fidelity wants them: 0..255 floats, or uint8."""

    def __init__(self, model, dtype):
        super().__init__()
        self.model, self.dtype, self.z_dim = model, dtype, model.z_dim

    def forward(self, z):
        x = self.model(z) * 255.0
        return x.round().clamp(0, 255).to(torch.uint8) if self.dtype == "uint8" else x


def _torch_fidelity_ppl(monkeypatch, module, *, n, z_dim, seed, dtype, resize, batch_size):
    """torch-fidelity's PPL with dsim's random-trunk LPIPS-VGG (its downloads replaced by our weights)."""
    tf = pytest.importorskip("torch_fidelity")
    import torchvision

    import torch_fidelity.sample_similarity_lpips as tf_lpips

    ours_net = LpipsNetwork("vgg", weights="random").load("cpu")
    linear = torch.load(LpipsNetwork("vgg", weights="random").linear_layers, map_location="cpu", weights_only=True)
    features = {f"{int(key.split('.')[1])}.{key.split('.')[2]}": value
                for key, value in ours_net.net.state_dict().items()}

    def vgg16():
        model = torchvision.models.vgg16(weights=None)
        model.features.load_state_dict(features)
        return model

    monkeypatch.setattr(tf_lpips, "load_state_dict_from_url", lambda *a, **k: linear)
    monkeypatch.setattr(tf_lpips, "torchvision_load_pretrained_vgg16", vgg16)
    wrapped = tf.GenerativeModelModuleWrapper(module, z_dim, "normal", 0)
    # no trimming inside torch-fidelity: 0.4.0 calls np.percentile(interpolation=), which NumPy 2 removed;
    # its rule (lower percentile rounded down, upper up) is applied to its raw lengths below
    return tf.calculate_metrics(input1=wrapped, input1_model_num_samples=n, ppl=True, cuda=False, verbose=False,
                                batch_size=batch_size, rng_seed=seed, ppl_epsilon=1e-4, ppl_reduction="none",
                                ppl_sample_similarity_resize=resize, ppl_sample_similarity_dtype=dtype,
                                ppl_discard_percentile_lower=None, ppl_discard_percentile_higher=None)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["uint8", None])
def test_matches_torch_fidelity(monkeypatch, dtype):
    """Same generator, latents (torch-fidelity's draw) and LPIPS network: per-path lengths and PPL agree."""
    from torch_fidelity.utils import sample_random

    n, seed, resize = 200, 3, 32
    spec = toy(output_range=[0, 255])
    module = Scaled(spec.load("cpu").model, dtype)
    theirs = _torch_fidelity_ppl(monkeypatch, module, n=n, z_dim=16, seed=seed, dtype=dtype, resize=resize,
                                 batch_size=50)
    rng = np.random.RandomState(seed)
    z0, z1 = sample_random(rng, (n, 16), "normal"), sample_random(rng, (n, 16), "normal")
    generator = Generator(module, spec, "cpu")  # dsim drives the very module torch-fidelity drove
    distances = path_lengths(generator, z0, z1, np.zeros(n), space="z", interpolation="lerp", resize=resize,
                             batch_size=50, lpips_weights="random")
    raw = np.asarray(theirs["perceptual_path_length_raw"], dtype=np.float64)
    # path by path, in torch-fidelity's order: both tools take float32 features of two nearly equal images, whose
    # last bits differ (the inputs are normalised in another order); the difference amplifies that to <= 2e-4
    # (uint8 images) and <= 3e-3 (float images, far smaller paths). The PPL itself agrees to < 1e-5.
    assert np.allclose(distances, raw, rtol=1e-3 if dtype == "uint8" else 1e-2, atol=0)
    lo, hi = np.percentile(raw, 1, method="lower"), np.percentile(raw, 99, method="higher")
    theirs_kept = raw[(raw >= lo) & (raw <= hi)]
    kept = trim_mask(distances, 1, 99)
    assert kept.sum() == len(theirs_kept) == n - 2
    assert distances[kept].mean() == pytest.approx(theirs_kept.mean(), rel=1e-4)
    assert distances[kept].std() == pytest.approx(theirs_kept.std(), rel=1e-4)
    assert distances[kept].mean() > 0


def test_smooth_generator_is_stable_in_epsilon_and_batch_size():
    """PPL is a differential: for a smooth model ε = 1e-4 and 1e-3 agree; batches do not change the paths."""
    g = toy().load("cpu")
    common = dict(n_samples=24, resize=None, lpips_weights="random", discard_lower=None, discard_upper=None)
    a = ppl(g, epsilon=1e-4, batch_size=8, **common)
    b = ppl(g, epsilon=1e-3, batch_size=8, **common)
    c = ppl(g, epsilon=1e-4, batch_size=24, **common)
    assert a["ppl"] == pytest.approx(b["ppl"], rel=0.05)
    assert a["ppl"] == pytest.approx(c["ppl"], rel=1e-4)
    assert a["n_kept"] == 24 and a["ppl"] == a["ppl_untrimmed"]


def test_constant_generator_has_zero_path_length():
    spec = GeneratorSpec.from_config({"name": "flat", "_target_": "gen_models.flat", "z_dim": 4})
    out = ppl(spec.load("cpu"), n_samples=6, resize=None, lpips_weights="random")
    assert out["ppl"] == 0.0


def test_full_sampling_draws_t_and_w_space_needs_a_mapping():
    z0, z1, t = ppl_latents(0, 50, 8, "full")
    assert 0 < t.min() and t.max() < 1 and z0.shape == (50, 8) and not np.array_equal(z0, z1)
    assert np.array_equal(ppl_latents(0, 5, 8, "full")[0], z0[:5])  # one stream per sample
    assert not ppl_latents(0, 5, 8, "end")[2].any()
    g = toy().load("cpu")
    w = ppl(g, space="w", sampling="full", n_samples=8, resize=None, lpips_weights="random")
    z = ppl(g, space="z", sampling="full", n_samples=8, resize=None, lpips_weights="random")
    assert w["ppl"] > 0 and z["ppl"] > 0 and w["ppl"] != z["ppl"]
    plain = GeneratorSpec.from_config({"name": "flat", "_target_": "gen_models.flat", "z_dim": 4})
    with pytest.raises(DsimError, match="no mapping network"):
        ppl(plain.load("cpu"), space="w", n_samples=4, lpips_weights="random")


def test_slerp_crop_resize_and_trimming():
    a, b = torch.randn(5, 7), torch.randn(5, 7)
    assert torch.allclose(slerp(a, b, torch.zeros(5, 1)), a / a.norm(dim=1, keepdim=True), atol=1e-6)
    assert torch.allclose(slerp(a, b, torch.ones(5, 1)), b / b.norm(dim=1, keepdim=True), atol=1e-5)
    assert torch.allclose(slerp(a, b, torch.full((5, 1), 0.3)).norm(dim=1), torch.ones(5), atol=1e-6)
    images = torch.rand(2, 3, 64, 64)
    assert centre_crop(images).shape == (2, 3, 32, 32)
    assert torch.equal(centre_crop(images), images[:, :, 24:56, 16:48])
    assert torch.allclose(resized(images, 32), images.reshape(2, 3, 32, 2, 32, 2).mean((3, 5)), atol=1e-6)
    assert torch.equal(resized(images, 64), images) and torch.equal(resized(images, 128), images)  # never upsampled
    d = np.arange(200, dtype=float)
    kept = trim_mask(d, 1, 99)
    assert d[kept].min() == 1 and d[kept].max() == 198  # percentile 1 rounded down, 99 rounded up


def test_variants_fix_space_and_sampling():
    spec = lookup("pplwfull")
    assert spec.fixed == {"space": "w", "interpolation": "lerp", "sampling": "full"}  # w paths are straight
    assert "space" not in spec.defaults() and "interpolation" not in spec.defaults()
    assert lookup("pplzend").fixed == {"space": "z", "sampling": "end"} and "interpolation" in lookup("pplzend").defaults()
    from dsim.metrics import check_params

    with pytest.raises(DsimError, match="pplwfull fixes space=w"):
        check_params(spec, {"space": "z"})
    with pytest.raises(DsimError, match="pplwfull fixes .*interpolation=lerp"):
        check_params(spec, {"interpolation": "slerp"})
    out = spec.fn(toy().load("cpu"), n_samples=6, resize=None, lpips_weights="random")
    assert set(out) == {"pplwfull", "pplwfull_std", "pplwfull_untrimmed", "n_kept"}
    assert len(out.per_image["candidate"]["path_length"]) == 6


def test_ppl_is_not_a_feature_metric():
    with pytest.raises(DsimError, match="evaluates a generator"):
        compute("ppl", np.zeros((4, 2)), np.zeros((4, 2)))
