"""DreamSim (the ensemble, and its single-branch variants) through the dreamsim package.

Each image becomes DreamSim's normalised embedding (``model.embed``: the branch features concatenated,
centred and L2-normalised), so the cosine distance of two embeddings is the DreamSim distance
(``dreamsim``'s own ``model(a, b)``). Preprocessing is dreamsim's: bicubic resize to 224×224 (no crop),
values in [0, 1]; each branch normalises with its own mean/std inside the network.

Weights: dreamsim's checkpoint zip (LoRA adapters and backbone files) unpacked into a folder, plus, for
the DINO / DINOv2 branches, their ``torch.hub`` repository and checkpoint in that same folder (dreamsim
points ``torch.hub`` at it). The default folder is ``<torch.hub dir>/dreamsim`` (``$TORCH_HOME/hub/dreamsim``);
``extractor.weights=FOLDER`` uses an existing dreamsim cache (dreamsim's own default is ``./models``).
dreamsim calls ``torch.hub.set_dir``; dsim restores the previous setting after every call
(:func:`dsim.weights.torch_hub_dir`), so nothing leaks into the rest of the process.

``weights=random`` builds the same architecture from dreamsim's own classes (``PerceptualModel``,
``ViTExtractor``, its DINO/CLIP ViT loaders) with seeded random backbones; the LoRA adapters are left
out, which at initialisation is the same function (LoRA's B matrices start at zero). The DINOv2 branch's
backbone, which dreamsim fetches from ``torch.hub`` code, is timm's ``vit_base_patch14_dinov2`` there.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path

import torch

from dsim import weights as weights_lib
from dsim.extractors.base import Extractor, Preprocess
from dsim.extractors.registry import register

# What dreamsim.model.download_weights checks for each dreamsim_type (the unpacked checkpoint zip) ...
_CHECKPOINT_FILES = {
    "ensemble": ("dino_vitb16_pretrain.pth", "open_clip_vitb16_pretrain.pth.tar", "clip_vitb16_pretrain.pth.tar",
                 "ensemble_lora"),
    "dino_vitb16": ("dino_vitb16_pretrain.pth", "dino_vitb16_single_lora"),
    "dinov2_vitb14": ("dinov2_vitb14_pretrain.pth", "dinov2_vitb14_single_lora"),
    "open_clip_vitb32": ("open_clip_vitb32_pretrain.pth.tar", "open_clip_vitb32_single_lora"),
    "clip_vitb32": ("clip_vitb32_pretrain.pth.tar", "clip_vitb32_single_lora"),
    "synclr_vitb16": ("synclr_vit_b_16.pth", "synclr_vitb16_single_lora"),
}
# ... and the torch.hub repository code + checkpoint its DINO / DINOv2 branch loads from the same folder.
_HUB = {  # branch: (torch.hub repository, its folder in the hub dir, its checkpoint in the hub dir)
    "dino_vitb16": ("facebookresearch/dino:main", "facebookresearch_dino_main",
                    "checkpoints/dino_vitbase16_pretrain.pth"),
    "dinov2_vitb14": ("facebookresearch/dinov2", "facebookresearch_dinov2_main",
                      "checkpoints/dinov2_vitb14_pretrain.pth"),
}


def dreamsim_home() -> Path:
    """Default DreamSim folder: ``<torch.hub dir>/dreamsim`` (follows ``TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "dreamsim"


@contextlib.contextmanager
def _dreamsim_call(folder):
    """Around every dreamsim call: its torch.hub directory change undone after, its prints sent to stderr."""
    with weights_lib.torch_hub_dir(folder), contextlib.redirect_stdout(sys.stderr):
        yield


class _DreamSim(Extractor):
    dreamsim_type = "ensemble"
    licence = "MIT (DreamSim)"
    # dreamsim's preprocess: transforms.Resize((224, 224), BICUBIC) on the PIL image, then ToTensor
    preprocess = Preprocess(size=224, resize=None, interpolation="bicubic", antialias=True)

    def _branches(self) -> list[str]:
        from dreamsim.config import dreamsim_args

        return dreamsim_args["model_config"][self.dreamsim_type]["model_type"].split(",")

    def _files(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(required, hashed): everything that must be in the folder, and the weights among it."""
        required = list(_CHECKPOINT_FILES[self.dreamsim_type])
        hashed = list(required)
        for branch in self._branches():
            if branch in _HUB:
                _, repo, checkpoint = _HUB[branch]
                required += [repo, checkpoint]
                hashed.append(checkpoint)
        return tuple(required), tuple(hashed)

    def default_weights(self) -> weights_lib.Location:
        from dreamsim.config import dreamsim_weights

        required, hashed = self._files()
        url = dreamsim_weights[self.dreamsim_type]
        hub = [_HUB[b][0] for b in self._branches() if b in _HUB]
        advice = (f"unzip {url.rsplit('/', 1)[-1]} into {{folder}}"
                  + (f" with torch.hub's cache of {', '.join(hub)} beside it" if hub else "")
                  + f" (`dsim weights fetch {self.name}` on a connected machine makes that folder: copy it)")
        summary = (f"dreamsim's download of {url} unpacked into $TORCH_HOME/hub/dreamsim/"
                   + (f" (+ torch.hub {', '.join(hub)} there)" if hub else ""))
        return weights_lib.FolderOf(dreamsim_home, required, hashed=hashed, source=url, fetcher=self._fetch,
                                    advice=advice, summary=summary)

    def local_weights(self, path: str) -> weights_lib.WeightsSource:
        required, hashed = self._files()
        return weights_lib.from_folder(path, extractor=self.name, required=required, hashed=hashed)

    def _fetch(self, folder: Path) -> None:
        import dreamsim

        with _dreamsim_call(folder):  # downloads the zip, and the hub repository/checkpoint on first build
            dreamsim.dreamsim(pretrained=True, device="cpu", cache_dir=str(folder), dreamsim_type=self.dreamsim_type)

    def build_model(self, weights: weights_lib.WeightsSource) -> torch.nn.Module:
        return self._build(weights, torch.device("cpu"))

    def load(self, device: torch.device) -> torch.nn.Module:
        # dreamsim keeps plain-tensor projections that follow the device given at construction, not .to()
        return self._build(self.resolved_weights, torch.device(device)).eval().requires_grad_(False).to(device)

    def _build(self, weights: weights_lib.WeightsSource, device: torch.device) -> torch.nn.Module:
        if weights.kind == "random":
            return self._build_random(device)
        import dreamsim

        with weights_lib.seeded(), _dreamsim_call(weights.path):
            model, _ = dreamsim.dreamsim(pretrained=True, device=str(device), cache_dir=str(weights.path),
                                         normalize_embeds=True, dreamsim_type=self.dreamsim_type)
        return model

    def _build_random(self, device: torch.device) -> torch.nn.Module:
        from dreamsim.config import dreamsim_args
        from dreamsim.feature_extraction.extractor import ViTExtractor
        from dreamsim.model import PerceptualModel

        original = ViTExtractor.__dict__["create_model"]

        def random_backbone(model_type: str, load_dir: str = "./models"):
            return _random_backbone(model_type, load_dir, original.__func__)

        with tempfile.TemporaryDirectory(prefix="dsim-dreamsim-") as folder, weights_lib.seeded(), \
                _dreamsim_call(folder):
            ViTExtractor.create_model = staticmethod(random_backbone)
            try:
                model = PerceptualModel(**dreamsim_args["model_config"][self.dreamsim_type], device=str(device),
                                        load_dir=folder, normalize_embeds=True)
            finally:
                ViTExtractor.create_model = original
        return model

    def features(self, model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
        return model.embed(batch)


def _random_backbone(model_type: str, load_dir: str, dreamsim_create_model):
    """A randomly initialised backbone in the form dreamsim's ``ViTExtractor.create_model`` returns.

    CLIP / OpenCLIP / SynCLR branches: a random checkpoint in dreamsim's own file format is written to
    ``load_dir`` and dreamsim's loader builds the branch from it (so its architecture edits — QuickGELU,
    LayerNorm eps, the pre-norm — are dreamsim's). DINO: dreamsim's DINO ViT-B/16 and projection head.
    """
    from dreamsim.feature_extraction import vision_transformer as vits

    folder = Path(load_dir)
    if model_type == "dino_vitb16":
        return vits.vit_base(patch_size=16), vits.DINOHead(768, 2048)
    if model_type == "dinov2_vitb14":
        import timm

        return timm.create_model("vit_base_patch14_dinov2", pretrained=False, img_size=224)
    if model_type in ("clip_vitb16", "clip_vitb32", "open_clip_vitb16", "open_clip_vitb32"):
        patch = int(model_type[-2:])
        vit = vits.vit_base(patch_size=patch)
        vit.pos_drop = torch.nn.LayerNorm(vit.embed_dim)
        state = dict(vit.state_dict())
        state["proj"] = torch.randn(vit.embed_dim, 512) * vit.embed_dim ** -0.5
        prefix = "open_clip" if model_type.startswith("open_clip") else "clip"
        torch.save({"state_dict": state}, folder / f"{prefix}_vitb{patch}_pretrain.pth.tar")
    elif model_type == "synclr_vitb16":
        state = {f"module.visual.{k}": v for k, v in vits.vit_base(patch_size=16).state_dict().items()}
        torch.save({"model": state}, folder / "synclr_vit_b_16.pth")
    else:  # pragma: no cover - dreamsim types dsim does not register
        raise ValueError(f"no random backbone for dreamsim model type {model_type!r}")
    return dreamsim_create_model(model_type, load_dir)


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
