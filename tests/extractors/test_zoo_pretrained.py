"""The extractors whose real ImageNet weights install offline (EfficientNet-Lite0/1/2, MobileNetV2): a
bundled photo gets its ImageNet class, and crops of one photo are nearer each other than other photos."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import dsim
from dsim.extractors import build

OFFLINE_PRETRAINED = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "mobilenet_v2")
CATS = range(281, 286)              # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = {967, 968, 504}            # espresso, cup, coffee mug


def _run(name: str, images: list[np.ndarray], layer: str | None = None) -> np.ndarray:
    extractor = build(name, layer=layer)
    model = extractor.load(torch.device("cpu"))
    with torch.inference_mode():
        return extractor.features(model, torch.stack([extractor.preprocess(i) for i in images])).numpy()


@pytest.mark.parametrize("name", OFFLINE_PRETRAINED)
def test_bundled_photos_get_their_imagenet_class(name, photos):
    logits = _run(name, [photos["chelsea"], photos["coffee"]], layer="logits")
    assert logits.shape == (2, 1000)
    assert logits[0].argmax() in CATS, np.argsort(logits[0])[-5:]
    assert logits[1].argmax() in COFFEE, np.argsort(logits[1])[-5:]


@pytest.mark.slow
@pytest.mark.parametrize("name", OFFLINE_PRETRAINED)
def test_crops_of_one_photo_are_nearer_each_other_than_other_photos(name, photos):
    crops, labels = [], []
    for label, image in photos.items():
        h, w = image.shape[:2]
        for top, left in ((0, 0), (h // 4, w // 4)):  # two overlapping crops of 70 % of the photo
            crops.append(np.ascontiguousarray(image[top:top + int(0.7 * h), left:left + int(0.7 * w)]))
            labels.append(label)
    features = torch.from_numpy(_run(name, crops))
    distances = torch.cdist(features, features)
    distances.fill_diagonal_(float("inf"))
    nearest = distances.argmin(dim=1).tolist()
    assert [labels[j] for j in nearest] == labels


def test_pretrained_features_through_the_embedding_pipeline(crops, tmp_path):
    """efficientnet_lite2 through dsim.embed: real weights, checksum recorded, pre-logits of the right size."""
    folder = tmp_path / "images"
    folder.mkdir()
    for path in sorted(crops["a"].iterdir())[:4]:
        shutil.copy(path, folder / path.name)
    emb = dsim.embed(folder, extractor="efficientnet_lite2", cache_dir=tmp_path / "cache", progress=False)
    assert emb.features.shape == (4, 1280) and not emb.random_weights
    assert emb.weights_checksum == "sha256:9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"
