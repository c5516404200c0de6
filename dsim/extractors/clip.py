"""OpenAI CLIP image encoders through open_clip_torch: ViT-B/32, ViT-L/14 and ViT-L/14@336 (CMMD's model).

The feature is the projected image embedding (``encode_image``, not L2-normalised: metrics that need
unit vectors, like CMMD, normalise themselves). Weights are open_clip's ``openai`` pretrained tag,
which open_clip downloads from the Hugging Face Hub (``timm/vit_*_clip_*.openai``) into the Hub cache
(``HF_HOME``); ``extractor.weights=PATH`` loads a local ``open_clip_model.safetensors`` (or
``open_clip_pytorch_model.bin``) of the same repository. OpenAI's models use QuickGELU, so it is forced
whichever way the weights arrive.
"""

from __future__ import annotations

import torch

from dsim import weights as weights_lib
from dsim.extractors.base import Extractor, Preprocess
from dsim.extractors.registry import register

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _clip_preprocess(size: int) -> Preprocess:
    # open_clip's image transform for these tags: bicubic resize of the shortest side, centre crop
    return Preprocess(size=size, resize=size, interpolation="bicubic", mean=OPENAI_CLIP_MEAN, std=OPENAI_CLIP_STD)


class _OpenCLIP(Extractor):
    arch = ""
    tag = "openai"
    licence = "MIT (OpenAI CLIP weights; open_clip code)"

    def pretrained_cfg(self) -> dict:
        from open_clip.pretrained import get_pretrained_cfg

        return get_pretrained_cfg(self.arch, self.tag)

    def default_weights(self) -> weights_lib.Location:
        from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

        repo, filename = self.pretrained_cfg()["hf_hub"].rstrip("/"), None
        if repo.count("/") > 1:  # "org/name/file" form
            repo, filename = repo.rsplit("/", 1)
        names = (filename,) if filename else (HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME)
        return weights_lib.HFHubFile(repo, names)

    def build_model(self, weights: weights_lib.WeightsSource) -> torch.nn.Module:
        import open_clip

        quick_gelu = bool(self.pretrained_cfg().get("quick_gelu", False))
        pretrained = str(weights.path) if weights.kind == "file" else None
        if pretrained is not None:
            weights_lib.read_state_dict(weights.file, extractor=self.name)  # tensors only, or one line
        with weights_lib.seeded(), weights_lib.checkpoint_errors(pretrained, extractor=self.name):
            model = open_clip.create_model(
                self.arch, pretrained=pretrained, force_quick_gelu=quick_gelu, require_pretrained=pretrained is not None
            )
        return model.visual  # encode_image(x) is visual(x); the text tower is not needed

    def features(self, model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
        return model(batch)


@register
class ClipViTB32(_OpenCLIP):
    name = "clip_vit_b32"
    summary = "OpenAI CLIP ViT-B/32 image embedding (open_clip ViT-B-32, openai)"
    arch = "ViT-B-32"
    layers = {"embedding": 512}
    preprocess = _clip_preprocess(224)


@register
class ClipViTL14(_OpenCLIP):
    name = "clip_vit_l14"
    summary = "OpenAI CLIP ViT-L/14 image embedding (open_clip ViT-L-14, openai)"
    arch = "ViT-L-14"
    layers = {"embedding": 768}
    preprocess = _clip_preprocess(224)


@register
class ClipViTL14_336(_OpenCLIP):
    name = "clip_vit_l14_336"
    summary = "OpenAI CLIP ViT-L/14 at 336 px, the CMMD paper's model (open_clip ViT-L-14-336, openai)"
    arch = "ViT-L-14-336"
    layers = {"embedding": 768}
    preprocess = _clip_preprocess(336)
