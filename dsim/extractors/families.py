"""Any backbone of a library, named ``<family>/<model>``: ``timm/<model>`` and ``open_clip/<model>/<tag>``
(``hf/<repo id>`` is :mod:`dsim.extractors.huggingface`).

- ``timm/<name>`` (``extractor=timm extractor.model=<name>``): any timm model, e.g.
  ``timm/convnextv2_base.fcmae_ft_in22k_in1k``, ``timm/swinv2_base_window12_192.ms_in22k``. The feature is
  the pooled pre-logits vector (``forward_head(forward_features(x), pre_logits=True)``, ``num_features``
  wide); the preprocessing is the model's pretrained configuration as timm's eval transform applies it
  (resize of the shorter side to ``input / crop_pct``, centre crop, its interpolation, mean and std).
  Weights: the pretrained tag's Hugging Face Hub repository in the Hub cache (``HF_HOME``), a local
  file (``weights=PATH``), or ``random``.
- ``open_clip/<architecture>/<pretrained tag>`` (``extractor=open_clip extractor.model=ViT-B-32
  extractor.pretrained=laion2b_s34b_b79k``): the image tower's projected embedding (``encode_image``),
  with the tag's preprocessing (shorter side to the input size, centre crop, its mean and std). Weights:
  the tag's Hub file in the Hub cache, a local file, or ``random``.

The identity holds the full name (model and tag), the weights' checksum and the preprocessing, like every
extractor's. The architecture is instantiated on PyTorch's ``meta`` device to read its output width, so
naming a model costs no memory and a fully cached run never builds it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cached_property
from typing import Any

import torch

from dsim import weights as weights_lib
from dsim.errors import DsimError
from dsim.extractors.base import Extractor, Preprocess
from dsim.extractors.registry import register

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


class LibraryBackbone(Extractor):
    """A library's backbones under one family name; ``model`` picks one (the instance's ``name`` is
    ``<family>/<model>``). Its width is read from the model only when asked for (:attr:`dim`)."""

    layers = {"features": 0}  # the width is the model's: see dim
    dims_note = "the model's width"
    # what each family defines: _choose(**options) sets model_id (one line for a bad option); _width() the
    # feature width; _make_preprocess() its preprocessing
    model_id: str
    _choose: Callable[..., None]
    _width: Callable[[], int]
    _make_preprocess: Callable[[], Any]

    def __init__(self, weights: str = "default", layer: str | None = None, **choice):
        self._choose(**choice)
        self.name = f"{type(self).name}/{self.model_id}"
        super().__init__(weights, layer)

    @cached_property
    def dim(self) -> int:
        return self._width()

    @property
    def preprocess(self) -> Preprocess:
        return self._preprocess

    @cached_property
    def _preprocess(self) -> Preprocess:
        return self._make_preprocess()


@register
class TimmBackbone(LibraryBackbone):
    name = "timm"
    summary = "any timm model (timm/<model>): pooled pre-logits features, the model's pretrained preprocessing"
    licence = "the model's (see its timm / Hugging Face model card)"
    input_note = "the model's pretrained input size"
    options = {"model": ("convnextv2_atto.fcmae_ft_in1k", "a timm model name, with its pretrained tag")}

    def _choose(self, model: str = "convnextv2_atto.fcmae_ft_in1k") -> None:
        import timm

        if not isinstance(model, str) or not timm.is_model(model.split(".")[0]):
            raise DsimError(
                f"extractor timm: unknown timm model {model!r} (see timm.list_models(), e.g. "
                "convnextv2_atto.fcmae_ft_in1k)"
            )
        self.model_id = model

    def _architecture(self, device: str):
        import timm

        with torch.device(device), weights_lib.seeded():
            return timm.create_model(self.model_id, pretrained=False)

    def _width(self) -> int:
        return int(self._architecture("meta").num_features)

    def _make_preprocess(self) -> Preprocess:
        import timm

        config = timm.data.resolve_model_data_config(self._architecture("meta"))
        if config.get("crop_mode", "center") != "center":
            raise DsimError(
                f"extractor {self.name}: timm crop_mode {config['crop_mode']!r} is not supported "
                "(dsim resizes the shorter side and crops the centre)"
            )
        size = int(config["input_size"][-1])
        return Preprocess(
            size=size,
            resize=int(math.floor(size / float(config.get("crop_pct", 1.0)))),
            interpolation=config.get("interpolation", "bicubic"),
            mean=tuple(config["mean"]),
            std=tuple(config["std"]),
        )

    def default_weights(self) -> weights_lib.Location:
        import timm

        cfg = timm.models.get_pretrained_cfg(self.model_id)
        repo = cfg.hf_hub_id if cfg is not None else None
        if not repo:
            raise DsimError(
                f"extractor {self.name}: timm names no Hugging Face weights for it; give "
                "extractor.weights=PATH (or random)"
            )
        return weights_lib.HFHubFile(repo, ("model.safetensors", "pytorch_model.bin"))

    def build_model(self, weights: weights_lib.WeightsSource) -> torch.nn.Module:
        return create_timm(self.model_id, weights, extractor=self.name)

    def features(self, model: Any, batch: torch.Tensor) -> torch.Tensor:  # model: a timm model
        return model.forward_head(model.forward_features(batch), pre_logits=True)


def create_timm(model_id: str, weights: weights_lib.WeightsSource, *, extractor: str, **options) -> torch.nn.Module:
    """A timm model with ``weights``: a file through timm's own loader (key filtering, position-embedding
    resampling; tensors only, or one line), else seeded random weights."""
    import timm

    with weights_lib.seeded():
        if weights.kind == "file":
            weights_lib.read_state_dict(weights.file, extractor=extractor)
            with weights_lib.checkpoint_errors(weights.file, extractor=extractor):
                return timm.create_model(
                    model_id, pretrained=True, pretrained_cfg_overlay={"file": str(weights.path)}, **options
                )
        return timm.create_model(model_id, pretrained=False, **options)


@register
class OpenClipBackbone(LibraryBackbone):
    name = "open_clip"
    summary = "any open_clip image tower (open_clip/<model>/<tag>): the projected image embedding"
    licence = "the tag's (see open_clip's pretrained list)"
    input_note = "the model's image size"
    options = {
        "model": ("ViT-B-32", "an open_clip architecture (open_clip.list_models())"),
        "pretrained": ("laion2b_s34b_b79k", "its pretrained tag (open_clip.list_pretrained_tags_by_model)"),
    }

    def _choose(self, model: str = "ViT-B-32", pretrained: str = "laion2b_s34b_b79k") -> None:
        import open_clip

        if "/" in str(model):  # open_clip/<model>/<tag> given as one name
            model, pretrained = str(model).split("/", 1)
        if model not in open_clip.list_models():
            raise DsimError(f"extractor open_clip: unknown architecture {model!r} (see open_clip.list_models())")
        tags = open_clip.list_pretrained_tags_by_model(model)
        if pretrained not in tags:
            raise DsimError(
                f"extractor open_clip: {model} has no pretrained tag {pretrained!r} "
                f"(choose from: {', '.join(tags) or 'none'})"
            )
        self.arch, self.tag, self.model_id = model, pretrained, f"{model}/{pretrained}"

    def _cfg(self) -> dict:
        from open_clip.pretrained import get_pretrained_cfg

        return get_pretrained_cfg(self.arch, self.tag)

    def _width(self) -> int:
        import open_clip

        return int(open_clip.get_model_config(self.arch)["embed_dim"])

    def _make_preprocess(self) -> Preprocess:
        import open_clip

        cfg, size = self._cfg(), open_clip.get_model_config(self.arch)["vision_cfg"].get("image_size", 224)
        size = int(size if isinstance(size, int) else size[-1])
        if cfg.get("resize_mode", "shortest") != "shortest":
            raise DsimError(f"extractor {self.name}: open_clip resize_mode {cfg['resize_mode']!r} is not supported")
        return Preprocess(
            size=size,
            resize=size,
            interpolation=cfg.get("interpolation") or "bicubic",
            mean=tuple(cfg.get("mean") or OPENAI_MEAN),
            std=tuple(cfg.get("std") or OPENAI_STD),
        )

    def default_weights(self) -> weights_lib.Location:
        from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

        repo = (self._cfg().get("hf_hub") or "").rstrip("/")
        if not repo:
            raise DsimError(
                f"extractor {self.name}: open_clip names no Hugging Face file for this tag; give "
                "extractor.weights=PATH (or random)"
            )
        names: tuple[str, ...] = (HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME)
        if repo.count("/") > 1:  # "org/name/file" form
            repo, filename = repo.rsplit("/", 1)
            names = (filename,)
        return weights_lib.HFHubFile(repo, names)

    def build_model(self, weights: weights_lib.WeightsSource) -> torch.nn.Module:
        import open_clip

        pretrained = str(weights.path) if weights.kind == "file" else None
        if pretrained is not None:
            weights_lib.read_state_dict(weights.file, extractor=self.name)  # tensors only, or one line
        with weights_lib.seeded(), weights_lib.checkpoint_errors(pretrained, extractor=self.name):
            model = open_clip.create_model(
                self.arch,
                pretrained=pretrained,
                force_quick_gelu=bool(self._cfg().get("quick_gelu", False)),
                require_pretrained=pretrained is not None,
            )
        return model.visual
