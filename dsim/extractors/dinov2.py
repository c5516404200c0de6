"""DINOv2 ViT-B/14 and ViT-L/14 (LVD-142M) through timm.

The feature is the CLS token after the final norm (timm ``forward_head(pre_logits=True)``, the same
vector as the hub model's ``x_norm_clstoken``). Images are taken at 224 px — the resolution of the
FD-DINOv2 evaluations (and torch-fidelity's DINOv2 extractor) — with timm's pretrained configuration
otherwise (bicubic, crop_pct 1.0, ImageNet mean/std); timm resamples the position embedding from 518
to 224 when it loads the weights. Weights: timm's Hugging Face Hub repository
``timm/vit_*_patch14_dinov2.lvd142m`` in the Hub cache (``HF_HOME``); ``extractor.weights=PATH`` loads a
local ``model.safetensors`` of it.
"""

from __future__ import annotations

from typing import Any

import torch

from dsim import weights as weights_lib
from dsim.errors import DsimError
from dsim.extractors.base import Extractor, Preprocess
from dsim.extractors.registry import register

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SIZE = 224


class _DINOv2(Extractor):
    timm_name = ""
    licence = "Apache-2.0"
    preprocess = Preprocess(
        size=IMAGE_SIZE, resize=IMAGE_SIZE, interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD
    )

    def default_weights(self) -> weights_lib.Location:
        import timm

        cfg = timm.models.get_pretrained_cfg(self.timm_name)
        repo = cfg.hf_hub_id if cfg is not None else None
        if not repo:
            raise DsimError(f"extractor={self.name}: timm knows no Hugging Face repository for {self.timm_name}")
        return weights_lib.HFHubFile(repo, ("model.safetensors", "pytorch_model.bin"))

    def build_model(self, weights: weights_lib.WeightsSource) -> torch.nn.Module:
        from dsim.extractors.families import create_timm

        return create_timm(self.timm_name, weights, extractor=self.name, img_size=IMAGE_SIZE)

    def features(self, model: Any, batch: torch.Tensor) -> torch.Tensor:  # model: its own nn.Module class
        return model.forward_head(model.forward_features(batch), pre_logits=True)


@register
class DINOv2ViTB14(_DINOv2):
    name = "dinov2_vitb14"
    summary = "DINOv2 ViT-B/14 CLS token (timm vit_base_patch14_dinov2.lvd142m)"
    timm_name = "vit_base_patch14_dinov2.lvd142m"
    layers = {"cls": 768}


@register
class DINOv2ViTL14(_DINOv2):
    name = "dinov2_vitl14"
    summary = "DINOv2 ViT-L/14 CLS token (timm vit_large_patch14_dinov2.lvd142m)"
    timm_name = "vit_large_patch14_dinov2.lvd142m"
    layers = {"cls": 1024}
