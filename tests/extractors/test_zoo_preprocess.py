"""Each extractor's declared preprocessing is its library's (timm, torchvision, open_clip, dreamsim,
torch-fidelity), and the identity changes with weights, layer and preprocessing only."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dsim.extractors import EXTRACTORS, Preprocess, available, build

# Pinned identities: a change here invalidates every user's embedding cache, so it must be deliberate.
PINNED = {
    ("efficientnet_lite0", "default"): "3b209af13b1959745cbfa4cc9c2f9d0c80d6840e628439b74a0d15f946a50b41",
    ("efficientnet_lite0", "random"): "179281286f6ce460310d046b3b27c57035d444c4ceca9da7fc1209630de8022f",
    ("pixels", "default"): "1ded44ff7b6e140f704a8309dddee2920834f09c6055557cf918876e5766997d",
}


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_efficientnet_preprocessing_is_timms_pretrained_config(name):
    import timm

    cfg = timm.models.get_pretrained_cfg(EXTRACTORS[name].timm_arch)
    pre = EXTRACTORS[name].preprocess
    assert pre.size == cfg.input_size[-1] and pre.resize == math.floor(cfg.input_size[-1] / cfg.crop_pct)
    assert (pre.interpolation, pre.mean, pre.std) == (cfg.interpolation, cfg.mean, cfg.std)


def test_efficientnet_preprocessing_matches_timms_transform(photos):
    import timm
    from PIL import Image

    cfg = timm.data.resolve_data_config({}, pretrained_cfg=timm.models.get_pretrained_cfg("tf_efficientnet_lite0").to_dict())
    theirs = timm.data.create_transform(**cfg)(Image.fromarray(photos["chelsea"]))
    ours = EXTRACTORS["efficientnet_lite0"].preprocess(photos["chelsea"])
    assert ours.shape == theirs.shape and (ours - theirs).abs().mean() < 1e-3


def test_mobilenet_preprocessing_is_torchvisions(photos):
    from torchvision.models import MobileNet_V2_Weights

    theirs = MobileNet_V2_Weights.IMAGENET1K_V1.transforms()
    pre = EXTRACTORS["mobilenet_v2"].preprocess
    assert ([pre.size], [pre.resize]) == (theirs.crop_size, theirs.resize_size)
    assert (pre.interpolation, list(pre.mean), list(pre.std)) == (theirs.interpolation.value, theirs.mean, theirs.std)
    image = torch.from_numpy(photos["coffee"]).permute(2, 0, 1)
    assert (pre(photos["coffee"]) - theirs(image)).abs().mean() < 0.01


@pytest.mark.parametrize("name", ["clip_vit_b32", "clip_vit_l14", "clip_vit_l14_336"])
def test_clip_preprocessing_is_open_clips(name):
    import open_clip

    cls = EXTRACTORS[name]
    tag = build(name).pretrained_cfg()
    image_size = open_clip.get_model_config(cls.arch)["vision_cfg"]["image_size"]
    pre = cls.preprocess
    assert pre.size == pre.resize == image_size and tag["resize_mode"] == "shortest"
    assert (pre.interpolation, pre.mean, pre.std) == (tag["interpolation"], tag["mean"], tag["std"])


@pytest.mark.parametrize("name", ["dinov2_vitb14", "dinov2_vitl14"])
def test_dinov2_preprocessing_is_timms_at_224(name):
    import timm

    cfg = timm.models.get_pretrained_cfg(EXTRACTORS[name].timm_name)
    pre = EXTRACTORS[name].preprocess
    assert pre.size == pre.resize == 224 and cfg.crop_pct == 1.0
    assert (pre.interpolation, pre.mean, pre.std) == (cfg.interpolation, cfg.mean, cfg.std)


def test_dreamsim_preprocessing_is_dreamsims():
    from dreamsim.config import dreamsim_args

    for name in available():
        if name.startswith("dreamsim"):
            pre = EXTRACTORS[name].preprocess
            assert (pre.size, pre.resize, pre.interpolation) == (dreamsim_args["img_size"], None, "bicubic")
            assert (pre.mean, pre.std, pre.scale) == ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "unit")


def test_inception_gets_the_decoded_uint8_image_unchanged_unless_resized(photos):
    image = np.ascontiguousarray(photos["rocket"][:123, :77])
    native = build("inception").preprocess(image)
    assert native.dtype == torch.uint8 and torch.equal(native, torch.from_numpy(image).permute(2, 0, 1))
    resized = build("inception", size=299).preprocess(image)
    assert resized.dtype == torch.uint8 and resized.shape == (3, 299, 299)


def test_preprocess_rejects_inconsistent_declarations():
    with pytest.raises(ValueError, match="mean/std do not apply"):
        Preprocess(size=8, scale="uint8", mean=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="scale"):
        Preprocess(size=8, scale="float")


def test_identity_is_pinned_for_existing_extractors():
    for (name, weights), identity in PINNED.items():
        assert build(name, weights=weights).identity == identity


def test_identity_changes_with_weights_layer_and_preprocessing_only(tmp_path):
    base = build("efficientnet_lite0")
    same = [build("efficientnet_lite0"), build("efficientnet_lite0", weights="default", layer="pre_logits")]
    assert {e.identity for e in same} == {base.identity}
    changed = [build("efficientnet_lite0", weights="random"), build("efficientnet_lite0", layer="logits"),
               build("efficientnet_lite1")]
    assert len({base.identity, *(e.identity for e in changed)}) == 4
    # preprocessing: Inception at native size vs resized to 299 (same weights, same layer)
    native, resized = build("inception", weights="random"), build("inception", weights="random", size=299)
    assert native.identity != resized.identity
    assert build("inception", weights="random", layer="logits").identity != native.identity
    # the identity's preimage holds exactly weights, layer, preprocessing (+ name, dim, implementation version)
    assert set(base.describe()) == {"name", "layer", "dim", "weights", "preprocess", "implementation_version"}
    assert "scale" not in base.describe()["preprocess"] and native.describe()["preprocess"]["scale"] == "uint8"
