"""``hf/<repo id>``: any Hugging Face ``transformers`` vision model, as ``AutoModel`` + ``AutoImageProcessor``.

``extractor=hf extractor.model=facebook/sam-vit-base`` (``dsim.embed(path, extractor="hf/facebook/sam-vit-base")``).
The preprocessing is the repository's own image processor, run per image in the decode workers; the
feature is the model's output pooled as ``pooling`` says:

- ``cls``: the last hidden state's first token (ViT, DINOv2, BEiT, CLIP's vision tower);
- ``mean``: the mean over every position of the last hidden state (all tokens, or a feature map's
  pixels: ConvNeXt, Swin, SAM's image encoder through ``get_image_embeddings``);
- ``projection``: the model's projected image embedding (``get_image_features``: CLIP, CLIPSeg, SigLIP);
- ``auto`` (default): ``projection`` where the model has one, else ``cls`` where it has a class token,
  else ``mean``.

Weights: the repository's snapshot in the Hub cache (``HF_HOME``; downloaded when online), a folder
written by ``save_pretrained`` (``extractor.weights=FOLDER``: ``config.json``, the weights and
``preprocessor_config.json``), or ``random`` (the repository's ``config.json`` from the Hub cache, seeded
initial weights). Repository code is never run (no ``trust_remote_code``), and pickled weights are read
as tensors only. The identity holds the name, the weights' checksum (config and weight files), the
config file's checksum, the resolved pooling and the image processor's class and settings.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from functools import cached_property
from pathlib import Path
from typing import cast

import numpy as np
import torch

from dsim import weights as weights_lib
from dsim.errors import DsimError
from dsim.extractors.families import LibraryBackbone
from dsim.extractors.registry import register

POOLINGS = ("auto", "cls", "mean", "projection")
PROCESSOR_FILE = "preprocessor_config.json"
_REPO_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")
_PROBES = ((37, 53), (61, 29))  # two aspect ratios: a processor must give one tensor size for both

log = logging.getLogger(__name__)


class ImageProcessorPreprocess:
    """A transformers image processor as dsim's preprocessing: an H×W×3 ``uint8`` array in, its
    ``pixel_values`` (3×H×W ``float32``) out. ``settings`` are its effective settings (file and defaults)."""

    def __init__(self, processor, *, extractor: str):
        self.processor = processor
        self.settings = json.loads(json.dumps(processor.to_dict(), default=str))
        shapes = {tuple(self(np.zeros((h, w, 3), np.uint8)).shape) for h, w in _PROBES}
        if len(shapes) != 1:
            raise DsimError(
                f"extractor {extractor}: its image processor gives tensors of different sizes "
                f"({', '.join(map(str, sorted(shapes)))}); dsim needs one size per batch "
                "(set its size / crop_size / pad_size in preprocessor_config.json)"
            )
        self.shape = shapes.pop()
        self.size = self.shape[-1]

    def __call__(self, rgb: np.ndarray) -> torch.Tensor:
        return self.processor(images=rgb, return_tensors="pt")["pixel_values"][0]

    def describe(self) -> dict:
        return {"image_processor": type(self.processor).__name__, **self.settings}

    def explain(self) -> str:
        s = self.settings
        steps = [f"transformers {type(self.processor).__name__} to {self.shape[-2]}×{self.shape[-1]}"]
        if s.get("do_resize", True) and s.get("size"):
            steps.append(f"resize {s['size']}")
        if s.get("do_center_crop") and s.get("crop_size"):
            steps.append(f"centre crop {s['crop_size']}")
        if s.get("do_pad") and s.get("pad_size"):
            steps.append(f"pad to {s['pad_size']}")
        if s.get("do_normalize", True) and s.get("image_mean"):
            steps.append(f"normalised with mean {s['image_mean']}, std {s.get('image_std')}")
        return ", ".join(steps)


@register
class HFBackbone(LibraryBackbone):
    name = "hf"
    summary = (
        "any Hugging Face transformers vision model (hf/<repo id>): AutoModel + AutoImageProcessor, the "
        "last hidden state pooled (cls | mean) or the projected image embedding"
    )
    licence = "the model's (see its Hugging Face model card)"
    input_note = "the image processor's size"
    preprocess_note = "the repository's image processor (AutoImageProcessor, preprocessor_config.json)"
    options = {
        "model": ("facebook/dinov2-small", "a Hugging Face model repository id"),
        "pooling": ("auto", "auto | cls | mean | projection (see dsim/extractors/huggingface.py)"),
    }

    def _choose(self, model: str = "facebook/dinov2-small", pooling: str = "auto") -> None:
        if not isinstance(model, str) or not _REPO_ID.match(model):
            raise DsimError(f"extractor hf: {model!r} is not a Hugging Face repository id (e.g. facebook/sam-vit-base)")
        if pooling not in POOLINGS:
            raise DsimError(f"extractor hf: pooling {pooling!r} is not one of {', '.join(POOLINGS)}")
        self.model_id, self.pooling = model, pooling

    # -- the repository's files ---------------------------------------------------------------------------

    def default_weights(self) -> weights_lib.Location:
        return weights_lib.HFHubSnapshot(self.model_id)

    def local_weights(self, path: str) -> weights_lib.WeightsSource:
        return weights_lib.from_transformers_folder(path, extractor=self.name)

    @cached_property
    def files(self) -> Path:
        """The folder with ``config.json`` and ``preprocessor_config.json``: the weights folder, or (random
        weights) the repository's snapshot in the Hub cache, fetched when online."""
        if self.resolved_weights.kind == "folder":
            return self.resolved_weights.file
        return _cached_configs(self.model_id, extractor=self.name)

    @cached_property
    def config(self):
        from transformers import AutoConfig

        with _library_errors(self.name, self.files):
            return AutoConfig.from_pretrained(str(self.files))

    def _make_preprocess(self) -> ImageProcessorPreprocess:
        from transformers import AutoImageProcessor

        if not (self.files / PROCESSOR_FILE).is_file():
            raise DsimError(
                f"extractor {self.name}: {self.files} has no {PROCESSOR_FILE}; save the image processor "
                f"with the model (AutoImageProcessor.from_pretrained(...).save_pretrained(FOLDER))"
            )
        with _library_errors(self.name, self.files):
            processor = AutoImageProcessor.from_pretrained(str(self.files))
        return ImageProcessorPreprocess(processor, extractor=self.name)

    # -- width and pooling, from the architecture on the meta device ----------------------------------------

    @cached_property
    def _probe(self) -> tuple[int, str]:
        """(feature width, resolved pooling), from one forward pass of the architecture on ``meta``."""
        from transformers import AutoModel

        with _library_errors(self.name, self.files), torch.device("meta"):
            skeleton = AutoModel.from_config(self.config)
        preprocess = cast(ImageProcessorPreprocess, self.preprocess)  # this family's own (_make_preprocess)
        batch = torch.empty((2, *preprocess.shape), device="meta")
        try:
            projected, hidden = _outputs(skeleton, batch)
        except Exception as error:  # noqa: BLE001 - the model's own forward: its exception types vary
            raise DsimError(
                f"extractor {self.name}: {type(skeleton).__name__} does not run on images alone "
                f"({' '.join(str(error).split())[:160]}); choose a vision model"
            ) from error
        pooling = resolve_pooling(self.pooling, skeleton, projected, hidden, extractor=self.name)
        return int(_pool(pooling, projected, hidden).shape[-1]), pooling

    def _width(self) -> int:
        return self._probe[0]

    def describe(self) -> dict:
        config_sha = weights_lib.cached_file_sha256(self.files / "config.json")
        return {**super().describe(), "pooling": self._probe[1], "config": f"sha256:{config_sha}"}

    # -- the network ------------------------------------------------------------------------------------------

    def build_model(self, weights: weights_lib.WeightsSource) -> torch.nn.Module:
        from transformers import AutoModel

        if weights.kind == "random":
            with weights_lib.seeded(), _library_errors(self.name, self.files):
                return AutoModel.from_config(self.config).float()
        for name in weights_lib.transformers_weight_files(weights.file):
            if name.endswith(".bin"):  # tensors only, or one line: transformers would unpickle it
                weights_lib.read_state_dict(weights.file / name, extractor=self.name)
        with weights_lib.seeded(), weights_lib.checkpoint_errors(weights.file, extractor=self.name), _quiet():
            model, info = AutoModel.from_pretrained(
                str(weights.file), output_loading_info=True, local_files_only=True, trust_remote_code=False
            )
        missing = list(info.get("missing_keys") or [])
        if missing:
            log.warning(
                "extractor %s: %d parameters are not in %s and stay at their initial values (%s%s)",
                self.name,
                len(missing),
                weights.path,
                ", ".join(missing[:3]),
                ", …" if len(missing) > 3 else "",
            )
        return model.float()

    def features(self, model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
        projected, hidden = _outputs(model, batch)
        return _pool(self._probe[1], projected, hidden)


def _outputs(model, pixel_values: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(projected image embedding or None, last hidden state or None) of ``model`` on a batch."""
    if hasattr(model, "get_image_embeddings"):  # SAM: the image encoder's neck, B×C×H×W
        return None, model.get_image_embeddings(pixel_values)
    if hasattr(model, "get_image_features"):  # CLIP-like: a tensor (transformers 4) or an output with both
        out = model.get_image_features(pixel_values=pixel_values)
        if torch.is_tensor(out):
            return out, None
        return out.pooler_output, getattr(out, "last_hidden_state", None)
    return None, model(pixel_values=pixel_values).last_hidden_state


def _has_class_token(model) -> bool:
    return any(name.endswith(("cls_token", "class_embedding")) for name, _ in model.named_parameters())


def resolve_pooling(requested: str, model, projected, hidden, *, extractor: str) -> str:
    """``requested`` made concrete for this model (``auto`` → projection, cls or mean), or one line why not."""
    if requested == "auto":
        if projected is not None:
            return "projection"
        return "cls" if hidden is not None and hidden.ndim == 3 and _has_class_token(model) else "mean"
    if requested == "projection" and projected is None:
        raise DsimError(
            f"extractor {extractor}: {type(model).__name__} has no projected image embedding "
            "(get_image_features); use pooling=cls or mean"
        )
    if requested in ("cls", "mean") and hidden is None:
        raise DsimError(
            f"extractor {extractor}: {type(model).__name__} gives no last hidden state here; use pooling=projection"
        )
    if requested == "cls" and (hidden.ndim != 3 or not _has_class_token(model)):
        raise DsimError(f"extractor {extractor}: {type(model).__name__} has no class token; use pooling=mean")
    return requested


def _pool(pooling: str, projected, hidden) -> torch.Tensor:
    if pooling == "projection":
        return projected
    if pooling == "cls":
        return hidden[:, 0]
    return hidden.flatten(2).mean(2) if hidden.ndim == 4 else hidden.mean(1)


def _cached_configs(repo_id: str, *, extractor: str) -> Path:
    """The snapshot folder with the repository's ``config.json`` and ``preprocessor_config.json``."""
    folder: Path | None = None
    for name in ("config.json", PROCESSOR_FILE):
        location = weights_lib.HFHubFile(repo_id, (name,))
        found = location.locate()
        if found is None and not weights_lib.is_offline():
            try:
                found = location.fetch()
            except Exception:  # noqa: BLE001 - no network, no such repository: the line below says what to do
                found = None
        if found is None:
            raise DsimError(
                f"extractor {extractor}: {name} of {repo_id} is not in the Hugging Face cache "
                f"({weights_lib.hf_hub_cache()}); on a connected machine run `hf download {repo_id} "
                f"config.json {PROCESSOR_FILE}`, or give extractor.weights=FOLDER (save_pretrained)"
            )
        folder = folder or found.parent
    assert folder is not None  # both files found, or raised above
    return folder


@contextlib.contextmanager
def _quiet():
    """transformers' own loading bars off inside the block (dsim shows the embedding's progress)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _library_errors(extractor: str, folder: Path):
    """Around transformers' loaders: an unknown model type, a missing or broken file is one line."""
    try:
        yield
    except DsimError:
        raise
    except (ValueError, OSError, KeyError) as error:
        reason = " ".join(str(error).split())[:200]
        hint = (
            " (a model type this transformers does not know? dsim never runs a repository's code)"
            if "model_type" in reason or "trust_remote_code" in reason
            else ""
        )
        raise DsimError(f"extractor {extractor}: cannot read {folder}: {reason}{hint}") from error
