"""Tiny real transformers architectures, saved with ``save_pretrained`` into a Hugging Face cache laid
out as the Hub client writes it (``refs/main``, ``snapshots/<revision>/`` linked to ``blobs/<sha256>``):
the offline stand-in for ``hf/<repo id>`` downloads."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import torch


def tiny(kind: str):
    """(model, image processor) of a small real architecture, with non-trivial seeded weights."""
    import transformers as T

    torch.manual_seed(1)
    if kind == "vit":
        model = T.ViTModel(T.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                       intermediate_size=64, image_size=32, patch_size=8))
        processor = T.ViTImageProcessor(size={"height": 32, "width": 32})
    elif kind == "convnextv2":
        model = T.ConvNextV2Model(T.ConvNextV2Config(hidden_sizes=[8, 16, 24, 40], depths=[1, 1, 1, 1]))
        processor = T.ConvNextImageProcessor(size={"shortest_edge": 32})
    elif kind == "sam":
        vision = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=64, patch_size=16,
                      output_channels=16, mlp_dim=64, global_attn_indexes=[1], window_size=2)
        model = T.SamModel(T.SamConfig(vision_config=vision))
        processor = T.SamImageProcessor(size={"longest_edge": 64}, pad_size={"height": 64, "width": 64})
    elif kind == "clipseg":
        text = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
        vision = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                      image_size=32, patch_size=8)
        model = T.CLIPSegModel(T.CLIPSegConfig(text_config=text, vision_config=vision, projection_dim=24))
        processor = T.ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.48, 0.46, 0.41],
                                        image_std=[0.27, 0.26, 0.28])
    else:
        raise ValueError(kind)
    with torch.no_grad():
        for parameter in model.parameters():  # SAM's zero-initialised neck would give zero features
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model, processor


def saved(kind: str, folder: Path) -> Path:
    model, processor = tiny(kind)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def add_to_hub_cache(cache: Path, repo_id: str, folder: Path, revision: str = "a" * 40) -> Path:
    """Put ``folder``'s files into ``cache`` as the Hub client does; return the snapshot folder."""
    root = cache / f"models--{repo_id.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(revision)
    (root / "blobs").mkdir(exist_ok=True)
    snapshot = root / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for file in folder.iterdir():
        blob = root / "blobs" / hashlib.sha256(file.read_bytes()).hexdigest()
        shutil.copyfile(file, blob)
        os.symlink(os.path.relpath(blob, snapshot), snapshot / file.name)
    return snapshot


def tiny_hub(cache: Path, root: Path, kinds=("vit", "convnextv2", "sam", "clipseg")) -> dict[str, Path]:
    """Repositories ``dsim-test/<kind>`` in ``cache`` (saved under ``root`` first); kind → saved folder."""
    folders = {}
    for kind in kinds:
        folders[kind] = saved(kind, root / kind)
        add_to_hub_cache(cache, f"dsim-test/{kind}", folders[kind])
    return folders


def mobilenet_v2_as_transformers(folder: Path) -> torch.nn.Module:
    """torchvision's ImageNet MobileNetV2 (installed offline) written as a transformers MobileNetV2Model
    folder, with a processor set like torchvision's transform; returns the torchvision network."""
    import transformers

    from dsim.extractors import build

    network = build("mobilenet_v2").load(torch.device("cpu"))
    config = transformers.MobileNetV2Config(tf_padding=False, finegrained_output=True, hidden_act="relu6",
                                            layer_norm_eps=1e-5)  # torchvision's padding and batch-norm epsilon
    model = transformers.MobileNetV2Model(config)
    source = [t for k, t in network.state_dict().items() if not k.startswith("classifier")]
    model.load_state_dict(dict(zip(model.state_dict(), source, strict=True)), strict=True)  # the same layout
    model.save_pretrained(folder)
    transformers.MobileNetV2ImageProcessor(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224},
                                           resample=2, image_mean=[0.485, 0.456, 0.406],
                                           image_std=[0.229, 0.224, 0.225]).save_pretrained(folder)
    return network
