"""Every extractor builds its real architecture with seeded random weights, offline, and emits its
documented dimension; building is deterministic and leaves the caller's random state alone."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from dsim.errors import DsimError
from dsim.extractors import EXTRACTORS, available, build

# One extractor per construction path (timm, torchvision, torch-fidelity, open_clip, timm ViT, dreamsim's
# CLIP loader, dreamsim's DINO): the others of a family share its build code, so its determinism is theirs.
FAMILY_REPRESENTATIVES = ("efficientnet_lite0", "mobilenet_v2", "inception", "clip_vit_b32", "dinov2_vitb14",
                          "dreamsim_clip_vitb32", "dreamsim_dino_vitb16")
# ViT-L sized networks and the three-branch DreamSim ensemble take about a minute together on two cores:
# they are marked heavy (run with pytest --heavy). By default their documented dimension is checked
# against the library's own model configuration, and their build code is their family's (tested below).
HEAVY = ("clip_vit_l14", "clip_vit_l14_336", "dinov2_vitl14", "dreamsim")
# hf/<repo> builds its random architecture from the repository's config.json, which is not here offline:
# tests/extractors/test_huggingface.py builds it from a config in a local Hub cache.
LAYERS = [pytest.param(name, layer, id=f"{name}-{layer}",
                       marks=[pytest.mark.heavy] if name in HEAVY else [])
          for name in available() if name != "hf" for layer in EXTRACTORS[name].layers]

_outputs: dict[tuple[str, str], np.ndarray] = {}


def _batch(extractor, photos) -> torch.Tensor:
    """Two small photo crops, preprocessed (same size: native-size extractors need one size per batch)."""
    crops = [photos["chelsea"][50:146, 100:196], photos["coffee"][100:196, 200:296]]
    return torch.stack([extractor.preprocess(np.ascontiguousarray(c)) for c in crops])


def _random_features(name: str, layer: str, photos) -> np.ndarray:
    extractor = build(name, weights="random", layer=layer)
    model = extractor.load(torch.device("cpu"))
    with torch.inference_mode():
        out = extractor.features(model, _batch(extractor, photos)).float().numpy()
    del model
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("name", "layer"), LAYERS)
def test_random_build_emits_the_documented_dimension(name, layer, photos):
    features = _random_features(name, layer, photos)
    _outputs[(name, layer)] = features
    assert features.shape == (2, build(name, layer=layer).dim)
    assert np.isfinite(features).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILY_REPRESENTATIVES)
def test_random_build_is_deterministic_and_keeps_the_callers_random_state(name, photos):
    default_layer = EXTRACTORS[name].default_layer()
    first = _outputs.get((name, default_layer))
    if first is None:
        first = _random_features(name, default_layer, photos)
    torch.manual_seed(1234)
    expected_next = torch.rand(3)
    torch.manual_seed(1234)
    again = _random_features(name, default_layer, photos)
    np.testing.assert_array_equal(first, again)
    torch.testing.assert_close(torch.rand(3), expected_next)  # the build did not consume the caller's RNG


def test_heavy_extractors_document_the_dimension_their_library_declares():
    import open_clip
    import timm
    from dreamsim.config import dreamsim_args
    from dreamsim.model import EMBED_DIMS

    for name in ("clip_vit_l14", "clip_vit_l14_336"):
        assert build(name).dim == open_clip.get_model_config(EXTRACTORS[name].arch)["embed_dim"]
    with torch.device("meta"):  # the architecture without allocating or initialising it
        vit_l = timm.create_model(EXTRACTORS["dinov2_vitl14"].timm_name.split(".")[0], img_size=224)
    assert build("dinov2_vitl14").dim == vit_l.num_features
    config = dreamsim_args["model_config"]["ensemble"]
    branches = zip(config["model_type"].split(","), config["feat_type"].split(","))
    assert build("dreamsim").dim == sum(EMBED_DIMS[model][feature] for model, feature in branches)


def test_random_weights_are_marked_and_change_the_identity():
    real, random = build("efficientnet_lite1"), build("efficientnet_lite1", weights="random")
    assert random.is_random and not real.is_random
    assert random.resolved_weights.checksum == "random:seed0" and random.identity != real.identity


def test_a_missing_layer_names_the_extractors_that_have_it():
    with pytest.raises(DsimError, match=r"no layer 'logits'.*efficientnet_lite0.*inception.*mobilenet_v2"):
        build("clip_vit_b32", layer="logits")
    with pytest.raises(DsimError, match="choose from: pool, logits"):
        build("inception", layer="fc")


def test_native_size_uint8_batches_go_through_the_embedding_pipeline(crops, tmp_path):
    """inception takes uint8 images at their own size: dsim.embed batches them and gets the direct features."""
    import shutil

    import dsim
    from dsim.data.images import load_rgb

    folder = tmp_path / "images"
    folder.mkdir()
    for path in sorted(crops["b"].iterdir())[:3]:
        shutil.copy(path, folder / path.name)
    emb = dsim.embed(folder, extractor="inception", weights="random", cache_dir=tmp_path / "cache", progress=False)
    assert emb.features.shape == (3, 2048) and emb.random_weights
    extractor = build("inception", weights="random")
    with torch.inference_mode():
        batch = torch.stack([extractor.preprocess(load_rgb(folder / i)) for i in emb.ids])
        direct = extractor.features(extractor.load(torch.device("cpu")), batch).numpy()
    np.testing.assert_allclose(emb.features, direct, rtol=1e-5, atol=1e-12)
