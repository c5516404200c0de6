"""DreamSim (the ensemble, and its single-branch variants), assembled from the dreamsim package's classes.

Each image becomes DreamSim's normalised embedding (``model.embed``: the branch features concatenated,
centred and L2-normalised), so the cosine distance of two embeddings is the DreamSim distance
(``dreamsim``'s own ``model(a, b)``). Preprocessing is dreamsim's: bicubic resize to 224×224 (no crop),
values in [0, 1]; each branch normalises with its own mean/std inside the network.

Weights: a folder with dreamsim's checkpoint zip unpacked in it — the LoRA adapter (``<type>_single_lora/``
or ``ensemble_lora/``: ``adapter_config.json`` and ``adapter_model.safetensors`` or ``.bin``) and the CLIP /
OpenCLIP / SynCLR backbone files — plus, for the DINO / DINOv2 branches, the backbone checkpoint torch.hub
downloads for them (``checkpoints/dino_vitbase16_pretrain.pth``, ``checkpoints/dinov2_vitb14_pretrain.pth``).
The default folder is ``<torch.hub dir>/dreamsim`` (``$TORCH_HOME/hub/dreamsim``); ``extractor.weights=FOLDER``
uses an existing dreamsim cache (dreamsim's own default is ``./models``).

dsim builds the network the way ``dreamsim.dreamsim(pretrained=True)`` does, but runs nothing from the folder:
no ``torch.hub.load`` (which would import the folder's ``facebookresearch_dino*_main/hubconf.py``), and every
file is read as tensors only (:func:`dsim.weights.read_state_dict`: safetensors, or ``torch.load`` with
``weights_only=True``), so a planted pickle is a one-line error and never runs. The backbones are dreamsim's
own ViT class with the edits of its ``load_*_as_dino`` loaders (DINO, CLIP, OpenCLIP, SynCLR) or timm's
``vit_base_patch14_dinov2`` (DINOv2: the layers and parameter names of facebookresearch/dinov2's
``dinov2_vitb14``); dreamsim's ``PerceptualModel`` holds them and peft adds the LoRA adapter. The checksum
covers the adapter folder and the backbone files: everything that changes the output. The DINO head in
``dino_vitb16_pretrain.pth`` is not read (DreamSim's DINO feature is the last block's CLS token, before it).

``dsim weights fetch`` downloads with dreamsim's downloader (the zip) and torch.hub's file download (the
DINO / DINOv2 checkpoints); no downloaded code is run there either.

``weights=random`` builds the same architecture with seeded random backbones; the LoRA adapters are left
out, which at initialisation is the same function (LoRA's B matrices start at zero).
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
from pathlib import Path
from typing import Any

import torch

from dsim import weights as weights_lib
from dsim.errors import DsimError
from dsim.extractors.base import Extractor, Preprocess
from dsim.extractors.registry import register

# The file each backbone is read from, relative to the weights folder: dreamsim's checkpoint zip holds the
# CLIP, OpenCLIP and SynCLR ones; the DINO / DINOv2 ones are what dreamsim's torch.hub.load downloads into
# <folder>/checkpoints/ (from _HUB_URLS).
_BACKBONE_FILES = {
    "dino_vitb16": "checkpoints/dino_vitbase16_pretrain.pth",
    "dinov2_vitb14": "checkpoints/dinov2_vitb14_pretrain.pth",
    "clip_vitb16": "clip_vitb16_pretrain.pth.tar",
    "clip_vitb32": "clip_vitb32_pretrain.pth.tar",
    "open_clip_vitb16": "open_clip_vitb16_pretrain.pth.tar",
    "open_clip_vitb32": "open_clip_vitb32_pretrain.pth.tar",
    "synclr_vitb16": "synclr_vit_b_16.pth",
}
_HUB_URLS = {  # the checkpoints facebookresearch/dino's and dinov2's hubconf.py load
    "dino_vitb16": "https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth",
    "dinov2_vitb14": "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth",
}
_ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")  # in the order peft looks for them
# dreamsim's PerceptualModel asks ViTExtractor.create_model for each backbone; dsim swaps in its own builder
# for the duration of one build, one build at a time (another thread must never get dreamsim's torch.hub one).
_BUILD_LOCK = threading.Lock()


def dreamsim_home() -> Path:
    """Default DreamSim folder: ``<torch.hub dir>/dreamsim`` (follows ``TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "dreamsim"


def adapter_folder(dreamsim_type: str) -> str:
    """The LoRA adapter's folder in dreamsim's checkpoint zip (the ``tag`` of ``dreamsim.model.dreamsim``)."""
    return "ensemble_lora" if dreamsim_type == "ensemble" else f"{dreamsim_type}_single_lora"


class _DreamSim(Extractor):
    dreamsim_type = "ensemble"
    licence = "MIT (DreamSim)"
    # dreamsim's preprocess: transforms.Resize((224, 224), BICUBIC) on the PIL image, then ToTensor
    preprocess = Preprocess(size=224, resize=None, interpolation="bicubic", antialias=True)

    def _branches(self) -> list[str]:
        from dreamsim.config import dreamsim_args

        return dreamsim_args["model_config"][self.dreamsim_type]["model_type"].split(",")

    def _files(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(required, hashed): the files the build reads, and what the checksum covers (the whole adapter
        folder, so whichever of its weight files is read)."""
        adapter = adapter_folder(self.dreamsim_type)
        backbones = tuple(_BACKBONE_FILES[branch] for branch in self._branches())
        return (f"{adapter}/adapter_config.json", *backbones), (adapter, *backbones)

    def default_weights(self) -> weights_lib.Location:
        from dreamsim.config import dreamsim_weights

        required, hashed = self._files()
        url = dreamsim_weights[self.dreamsim_type]
        hub = [b for b in self._branches() if b in _HUB_URLS]
        advice = (
            f"unzip {url.rsplit('/', 1)[-1]} into {{folder}}"
            + "".join(f", put {_HUB_URLS[b]} at {{folder}}/{_BACKBONE_FILES[b]}" for b in hub)
            + f" (`dsim weights fetch {self.name}` on a connected machine makes that folder: copy it)"
        )
        # rendered into conf/extractor/ and the table of docs/reference/extractors.md
        summary = f"dreamsim's download of {url} unpacked into $TORCH_HOME/hub/dreamsim/" + "".join(
            f" (+ {_HUB_URLS[b]} as {_BACKBONE_FILES[b]})" for b in hub
        )
        return weights_lib.FolderOf(
            dreamsim_home, required, hashed=hashed, source=url, fetcher=self._fetch, advice=advice, summary=summary
        )

    def local_weights(self, path: str) -> weights_lib.WeightsSource:
        required, hashed = self._files()
        return weights_lib.from_folder(path, extractor=self.name, required=required, hashed=hashed)

    def _fetch(self, folder: Path) -> None:
        """dreamsim's downloader for its checkpoint zip, then the DINO / DINOv2 checkpoints (files, no code)."""
        from dreamsim.model import download_weights

        with contextlib.redirect_stdout(sys.stderr):  # dreamsim prints its progress
            download_weights(cache_dir=str(folder), dreamsim_type=self.dreamsim_type)
        for branch in self._branches():
            target = folder / _BACKBONE_FILES[branch]
            if branch in _HUB_URLS and not target.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                torch.hub.download_url_to_file(_HUB_URLS[branch], str(target))

    def build_model(self, weights: weights_lib.WeightsSource) -> torch.nn.Module:
        return self._build(weights, torch.device("cpu"))

    def load(self, device: torch.device) -> torch.nn.Module:
        # dreamsim keeps plain-tensor projections that follow the device given at construction, not .to()
        return self._build(self.resolved_weights, torch.device(device)).eval().requires_grad_(False).to(device)

    def _build(self, weights: weights_lib.WeightsSource, device: torch.device) -> torch.nn.Module:
        folder = None if weights.kind == "random" else weights.file
        with weights_lib.seeded():
            model = _perceptual_model(self.dreamsim_type, folder, device, self.name)
            if folder is not None:
                model = _with_adapter(model, folder / adapter_folder(self.dreamsim_type), self.name)
        return model

    def features(self, model: Any, batch: torch.Tensor) -> torch.Tensor:  # model: the DreamSim ensemble
        return model.embed(batch)


def _perceptual_model(dreamsim_type: str, folder: Path | None, device: torch.device, extractor: str) -> torch.nn.Module:
    """dreamsim's ``PerceptualModel`` for ``dreamsim_type``, each backbone from :func:`_backbone` (read from
    ``folder``, or random when it is ``None``) where dreamsim's ``ViTExtractor.create_model`` would load it."""
    from dreamsim.config import dreamsim_args
    from dreamsim.feature_extraction.extractor import ViTExtractor
    from dreamsim.model import PerceptualModel

    def create_model(model_type: str, load_dir: str = ""):
        return _backbone(model_type, folder, extractor)

    with _BUILD_LOCK:
        original = ViTExtractor.__dict__["create_model"]
        ViTExtractor.create_model = staticmethod(create_model)
        try:
            return PerceptualModel(
                **dreamsim_args["model_config"][dreamsim_type], device=str(device), normalize_embeds=True
            )
        finally:
            ViTExtractor.create_model = original


def _backbone(model_type: str, folder: Path | None, extractor: str):
    """One branch's backbone, as dreamsim's ``ViTExtractor.create_model`` returns it (a ViT, or a ViT and
    its projection), its weights read as tensors from ``folder`` (random when ``folder`` is ``None``)."""
    from dreamsim.feature_extraction import vision_transformer as vits

    file = None if folder is None else folder / _BACKBONE_FILES[model_type]
    if model_type == "dino_vitb16":  # facebookresearch/dino's hubconf.py dino_vitb16, without its head
        vit = vits.vit_base(patch_size=16, num_classes=0)
        if file is not None:
            weights_lib.load_into(vit, file, extractor=extractor)
        return vit
    if model_type == "dinov2_vitb14":
        return _dinov2_vitb14(file, extractor)
    if model_type == "synclr_vitb16":  # dreamsim's load_synclr_as_dino: {"model": {"module.visual.<key>": ...}}
        vit = vits.vit_base(patch_size=16)
        if file is not None:
            state = weights_lib.read_state_dict(file, extractor=extractor)
            state = {key.removeprefix("module.visual."): value for key, value in state.items()}
            weights_lib.load_state(vit, state, path=file, extractor=extractor)
        return vit
    if model_type in ("clip_vitb16", "clip_vitb32", "open_clip_vitb16", "open_clip_vitb32"):
        return _clip_as_dino(model_type, file, extractor)
    raise ValueError(f"dsim builds no dreamsim backbone {model_type!r}")  # pragma: no cover - not registered


def _clip_as_dino(model_type: str, file: Path | None, extractor: str):
    """A CLIP / OpenCLIP image tower in dreamsim's ViT-B class, and its 768→512 projection, as dreamsim's
    ``load_clip_as_dino`` / ``load_open_clip_as_dino`` build them from ``{"state_dict": {..., "proj"}}``:
    CLIP's pre-norm in place of ``pos_drop``, LayerNorm eps 1e-5, and QuickGELU for OpenAI's CLIP."""
    from dreamsim.feature_extraction import vision_transformer as vits
    from dreamsim.feature_extraction.load_clip_as_dino import QuickGELU

    vit = vits.vit_base(patch_size=int(model_type[-2:]))
    vit.pos_drop = torch.nn.LayerNorm(vit.embed_dim)
    if file is None:
        proj = torch.randn(vit.embed_dim, 512) * vit.embed_dim**-0.5
    else:
        state = dict(weights_lib.read_state_dict(file, extractor=extractor))
        proj = state.pop("proj", None)
        if proj is None or proj.shape != (vit.embed_dim, 512):
            raise DsimError(
                f"weights file {file} does not fit extractor {extractor!r}: it needs a 768×512 'proj' "
                "tensor beside the ViT's (a checkpoint of another network?)"
            )
        weights_lib.load_state(vit, state, path=file, extractor=extractor)
    if not model_type.startswith("open_clip"):
        for block in vit.blocks:
            block.mlp.act = QuickGELU()
    for module in vit.modules():
        if isinstance(module, torch.nn.LayerNorm):
            module.eps = 1e-5
    return vit, proj


def _dinov2_vitb14(file: Path | None, extractor: str) -> torch.nn.Module:
    """facebookresearch/dinov2's ``dinov2_vitb14`` as timm's ``vit_base_patch14_dinov2`` (the same layers and
    parameter names) for 224-px inputs: its training-only ``mask_token`` dropped, and its 37×37 position
    embedding resampled once to 16×16 as DINOv2's ``interpolate_pos_encoding`` does at every forward pass."""
    import timm

    vit = timm.create_model("vit_base_patch14_dinov2", pretrained=False, img_size=224, num_classes=0)
    if file is not None:
        state = dict(weights_lib.read_state_dict(file, extractor=extractor))
        state.pop("mask_token", None)
        if "pos_embed" in state:
            state["pos_embed"] = _dinov2_position_embedding(state["pos_embed"], grid=224 // 14)
        weights_lib.load_state(vit, state, path=file, extractor=extractor)
    return vit


def _dinov2_position_embedding(pos_embed: torch.Tensor, grid: int) -> torch.Tensor:
    """DINOv2's position embedding (1 × (1 + side²) × dim) for a grid × grid input: bicubic, the scale factor
    (grid + 0.1) / side (DINOv2's ``interpolate_offset``), no antialiasing; unchanged when it fits already."""
    side = math.isqrt(pos_embed.shape[1] - 1) if pos_embed.ndim == 3 else 0
    if side == grid or side * side != pos_embed.shape[1] - 1:
        return pos_embed  # already the grid's, or no square grid (load_state then names the mismatch)
    dim = pos_embed.shape[-1]
    scale = (grid + 0.1) / side
    patches = pos_embed[:, 1:].float().reshape(1, side, side, dim).permute(0, 3, 1, 2)
    patches = torch.nn.functional.interpolate(patches, scale_factor=(scale, scale), mode="bicubic", antialias=False)
    return torch.cat((pos_embed[:, :1], patches.permute(0, 2, 3, 1).reshape(1, grid * grid, dim)), dim=1)


def _with_adapter(model: torch.nn.Module, adapter: Path, extractor: str) -> torch.nn.Module:
    """``model`` with the LoRA adapter in folder ``adapter``, as dreamsim's ``PeftModel.from_pretrained`` call
    sets it up: the settings of ``adapter_config.json`` (JSON), the weights read by dsim as tensors only."""
    import peft
    from peft.utils import set_peft_model_state_dict

    settings = adapter / "adapter_config.json"
    weights_file = next((adapter / name for name in _ADAPTER_WEIGHTS if (adapter / name).is_file()), None)
    if weights_file is None:
        raise DsimError(
            f"weights folder for extractor {extractor!r} is incomplete: {adapter} has no "
            f"{' or '.join(_ADAPTER_WEIGHTS)} (unzip dreamsim's checkpoint there again)"
        )
    try:
        config = peft.LoraConfig.from_pretrained(str(adapter))
    except (ValueError, TypeError, KeyError, OSError) as error:  # bad JSON, unknown or ill-typed settings
        raise DsimError(
            f"cannot read the LoRA settings {settings} for extractor {extractor!r}: "
            f"{' '.join(str(error).split())[:160]} (unzip dreamsim's checkpoint there again)"
        ) from error
    if not isinstance(config, peft.LoraConfig):
        kind = getattr(config.peft_type, "value", config.peft_type)
        raise DsimError(
            f"{settings} for extractor {extractor!r} is no LoRA adapter (peft_type {kind}): "
            "DreamSim's adapters are LoRA (unzip dreamsim's checkpoint there again)"
        )
    config.inference_mode = True
    state = weights_lib.read_state_dict(weights_file, extractor=extractor)
    try:
        model = peft.get_peft_model(model, config)
    except (ValueError, TypeError) as error:  # e.g. target_modules the network does not have
        raise DsimError(
            f"LoRA settings {settings} do not fit extractor {extractor!r}: {' '.join(str(error).split())[:160]}"
        ) from error
    with weights_lib.checkpoint_errors(weights_file, extractor=extractor):  # shape mismatches
        loaded: Any = set_peft_model_state_dict(model, state)  # load_state_dict's result: missing/unexpected keys
    missing = [key for key in loaded.missing_keys if "lora_" in key]
    if loaded.unexpected_keys or missing:
        key = (loaded.unexpected_keys or missing)[0]
        raise DsimError(
            f"LoRA weights {weights_file} do not fit extractor {extractor!r} "
            f"({len(loaded.unexpected_keys)} unknown, {len(missing)} missing tensors, e.g. {key}): "
            "unzip dreamsim's checkpoint there again"
        )
    return model


@register
class DreamSimEnsemble(_DreamSim):
    name = "dreamsim"
    summary = "DreamSim ensemble (DINO ViT-B/16 + CLIP ViT-B/16 + OpenCLIP ViT-B/16, LoRA), normalised embedding"
    licence = "MIT (DreamSim); backbones Apache-2.0 (DINO), MIT (CLIP, OpenCLIP)"
    dreamsim_type = "ensemble"
    layers = {"embedding": 1792}


@register
class DreamSimDINO(_DreamSim):
    name = "dreamsim_dino_vitb16"
    summary = "DreamSim single branch: DINO ViT-B/16 (LoRA), normalised embedding"
    licence = "MIT (DreamSim); backbone Apache-2.0 (DINO)"
    dreamsim_type = "dino_vitb16"
    layers = {"embedding": 768}


@register
class DreamSimCLIP(_DreamSim):
    name = "dreamsim_clip_vitb32"
    summary = "DreamSim single branch: CLIP ViT-B/32 (LoRA), normalised embedding"
    licence = "MIT (DreamSim; backbone OpenAI CLIP)"
    dreamsim_type = "clip_vitb32"
    layers = {"embedding": 512}


@register
class DreamSimOpenCLIP(_DreamSim):
    name = "dreamsim_open_clip_vitb32"
    summary = "DreamSim single branch: OpenCLIP ViT-B/32 LAION-400M (LoRA), normalised embedding"
    licence = "MIT (DreamSim; backbone OpenCLIP)"
    dreamsim_type = "open_clip_vitb32"
    layers = {"embedding": 512}


@register
class DreamSimDINOv2(_DreamSim):
    name = "dreamsim_dinov2_vitb14"
    summary = "DreamSim single branch: DINOv2 ViT-B/14 (LoRA), normalised embedding"
    licence = "MIT (DreamSim); backbone Apache-2.0 (DINOv2)"
    dreamsim_type = "dinov2_vitb14"
    layers = {"embedding": 768}


@register
class DreamSimSynCLR(_DreamSim):
    name = "dreamsim_synclr_vitb16"
    summary = "DreamSim single branch: SynCLR ViT-B/16 (LoRA), normalised embedding"
    licence = "MIT (DreamSim); backbone Apache-2.0 (SynCLR)"
    dreamsim_type = "synclr_vitb16"
    layers = {"embedding": 768}
