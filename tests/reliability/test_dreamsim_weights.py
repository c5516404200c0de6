"""A DreamSim weights folder runs no code (issue 24): dsim builds DreamSim without ``torch.hub``, reads every
file as tensors only, and its checksum covers every file that changes the output.

The folders are written here in dreamsim's own file formats with random but fixed weights (the real ones
cannot be downloaded in the tests). dreamsim's own loader, ``dreamsim.dreamsim(pretrained=True,
cache_dir=FOLDER)`` (dreamsim 0.2.1, ``dreamsim/model.py`` lines 251-295), run on the same folder, is the
reference the embeddings must match; for its DINO branch it imports ``FOLDER/facebookresearch_dino_main/
hubconf.py`` through ``torch.hub.load`` (``dreamsim/feature_extraction/extractor.py`` line 72), so the
folders hold a stand-in of facebookresearch/dino's hubconf.py: that is the code dsim must never run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import warnings
from pathlib import Path

import pytest
import torch

import dsim
from dsim import weights as weights_lib
from dsim.errors import DsimError
from dsim.extractors import build
from dsim_testing import write_crops
from test_files_and_inputs import planted_checkpoint

DINO, CLIP = "dreamsim_dino_vitb16", "dreamsim_clip_vitb32"
DINO_CHECKPOINT = "checkpoints/dino_vitbase16_pretrain.pth"

# facebookresearch/dino's hubconf.py, function dino_vitb16 (github.com/facebookresearch/dino, hubconf.py lines
# 52-64): dreamsim's vision_transformer.py is that repository's, copied. ``{prelude}`` is where a planted
# copy puts its payload.
HUBCONF = '''import torch
from dreamsim.feature_extraction import vision_transformer as vits
{prelude}
dependencies = ["torch"]


def dino_vitb16(pretrained=True, **kwargs):
    model = vits.__dict__["vit_base"](patch_size=16, num_classes=0, **kwargs)
    if pretrained:
        state_dict = torch.hub.load_state_dict_from_url(
            url="https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth",
            map_location="cpu",
        )
        model.load_state_dict(state_dict, strict=True)
    return model
'''


def adapter_folder(dreamsim_type: str) -> str:
    """The adapter's folder, as ``dreamsim.dreamsim`` names it (``dreamsim/model.py`` lines 278-283)."""
    return "ensemble_lora" if dreamsim_type == "ensemble" else f"{dreamsim_type}_single_lora"


def jittered(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """``module`` with fixed random noise added to every tensor, so each one of a file shows in the output."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in module.state_dict().values():
            tensor.add_(0.02 * torch.randn(tensor.shape, generator=generator))
    return module


def write_adapter(folder: Path, name: str, *, safetensors: bool) -> None:
    """A LoRA adapter as dreamsim's training saves it (``get_peft_model`` on its ``PerceptualModel``,
    ``target_modules=['qkv']``: dreamsim's training/train.py), with non-zero B matrices."""
    import peft

    with weights_lib.seeded(5):
        network = build(name, weights="random").load(torch.device("cpu"))
        config = peft.LoraConfig(r=16, lora_alpha=32, lora_dropout=0.2, bias="none", target_modules=["qkv"])
        adapted = peft.get_peft_model(network, config)
    generator = torch.Generator().manual_seed(6)
    with torch.no_grad():
        for key, tensor in adapted.state_dict().items():
            if "lora_" in key:
                tensor.copy_(0.05 * torch.randn(tensor.shape, generator=generator))
    adapted.save_pretrained(str(folder / adapter_folder(build(name).dreamsim_type)), safe_serialization=safetensors)


def write_dino_folder(folder: Path) -> Path:
    """dreamsim_dino_vitb16's folder: its torch.hub checkpoint and hub code, the DINO head file of dreamsim's
    zip (which dreamsim reads, dsim not) and a ``.bin`` LoRA adapter."""
    from dreamsim.feature_extraction import vision_transformer as vits

    vit = jittered(vits.vit_base(patch_size=16, num_classes=0), seed=1)
    (folder / "checkpoints").mkdir(parents=True)
    torch.save(vit.state_dict(), folder / DINO_CHECKPOINT)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*weight_norm.* is deprecated")  # DINOHead's, not ours
        head = jittered(vits.DINOHead(768, 2048), seed=2)
    student = {f"module.head.{key}": value for key, value in head.state_dict().items()}
    student["module.head.last_layer.weight"] = head.last_layer.weight.detach().clone()
    torch.save({"student": student}, folder / "dino_vitb16_pretrain.pth")
    write_hubconf(folder, prelude="")
    write_adapter(folder, DINO, safetensors=False)
    return folder


def write_hubconf(folder: Path, prelude: str) -> Path:
    hubconf = folder / "facebookresearch_dino_main" / "hubconf.py"
    hubconf.parent.mkdir(exist_ok=True)
    hubconf.unlink(missing_ok=True)  # never write through a link into the shared original
    hubconf.write_text(HUBCONF.format(prelude=prelude))
    return hubconf


def write_clip_checkpoint(folder: Path, prefix: str, patch: int, seed: int) -> None:
    """A CLIP / OpenCLIP tower in dreamsim's ``{"state_dict": ...}`` file, with its projection ``proj``
    (what ``load_clip_as_dino`` / ``load_open_clip_as_dino`` read)."""
    from dreamsim.feature_extraction import vision_transformer as vits

    vit = vits.vit_base(patch_size=patch)
    vit.pos_drop = torch.nn.LayerNorm(768)
    state = dict(jittered(vit, seed=seed).state_dict())
    state["proj"] = torch.randn(768, 512, generator=torch.Generator().manual_seed(seed)) * 768 ** -0.5
    torch.save({"state_dict": state}, folder / f"{prefix}_vitb{patch}_pretrain.pth.tar")


def write_clip_folder(folder: Path) -> Path:
    """dreamsim_clip_vitb32's folder: its CLIP checkpoint and a ``.safetensors`` LoRA adapter."""
    folder.mkdir(parents=True)
    write_clip_checkpoint(folder, "clip", 32, seed=3)
    write_adapter(folder, CLIP, safetensors=True)
    return folder


def write_ensemble_folder(folder: Path, dino_folder: Path) -> Path:
    """The ensemble's folder: the DINO files (linked from ``dino_folder``), CLIP and OpenCLIP ViT-B/16."""
    linked_copy(dino_folder, folder)
    shutil.rmtree(folder / adapter_folder("dino_vitb16"))
    write_clip_checkpoint(folder, "clip", 16, seed=4)
    write_clip_checkpoint(folder, "open_clip", 16, seed=5)
    write_adapter(folder, "dreamsim", safetensors=False)
    return folder


def linked_copy(source: Path, target: Path) -> Path:
    """A copy of a weights folder to edit: its files hard-linked (unlink a file before rewriting it)."""
    shutil.copytree(source, target, copy_function=os.link)
    return target


def rewrite(path: Path, content: bytes) -> None:
    path.unlink()  # the folder is a linked copy: writing in place would change the original too
    path.write_bytes(content)


@pytest.fixture(scope="module")
def dino_folder(tmp_path_factory) -> Path:
    return write_dino_folder(tmp_path_factory.mktemp("dreamsim") / "dino")


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory) -> Path:
    return write_clip_folder(tmp_path_factory.mktemp("dreamsim") / "clip")


@pytest.fixture(scope="module")
def ensemble_folder(tmp_path_factory, dino_folder) -> Path:
    return write_ensemble_folder(tmp_path_factory.mktemp("dreamsim") / "ensemble", dino_folder)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    write_crops(folder, 3, seed=21)
    return folder


def batch_of(extractor, images: Path) -> torch.Tensor:
    from dsim.data.images import load_rgb

    return torch.stack([extractor.preprocess(load_rgb(path)) for path in sorted(images.glob("*.png"))])


def embed(images: Path, extractor, tmp_path: Path):
    return dsim.embed(images, extractor=extractor, cache_dir=tmp_path / "cache", device="cpu", num_workers=0,
                      progress=False)


def dreamsim_reference(folder: Path, dreamsim_type: str) -> torch.nn.Module:
    """dreamsim's own loader on ``folder`` (its torch.hub directory change undone after)."""
    import dreamsim

    with weights_lib.torch_hub_dir(folder), contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*weight_norm.* is deprecated")
        warnings.filterwarnings("ignore", message="Already found a `peft_config`")  # its second adapter setup
        model, _ = dreamsim.dreamsim(pretrained=True, device="cpu", cache_dir=str(folder), normalize_embeds=True,
                                     dreamsim_type=dreamsim_type)
    return model


# ---------------------------------------------------------------------------------------------------
# no code from the folder runs


@pytest.mark.slow
def test_python_files_in_the_weights_folder_never_run(dino_folder, images, tmp_path):
    """A hubconf.py (and other .py files) that would touch a marker: embedding never imports them."""
    folder = linked_copy(dino_folder, tmp_path / "weights")
    marker = tmp_path / "MARKER"
    payload = f"import pathlib; pathlib.Path({str(marker)!r}).touch()"
    write_hubconf(folder, prelude=payload)
    for planted in ("facebookresearch_dino_main/vision_transformer.py", "dino_vitb16_single_lora/__init__.py",
                    "__init__.py", "checkpoints/__init__.py"):
        (folder / planted).write_text(payload + "\n")
    assert embed(images, build(DINO, weights=str(folder)), tmp_path).features.shape == (3, 768)
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize("rel", [DINO_CHECKPOINT, "dino_vitb16_single_lora/adapter_model.bin",
                                 "dino_vitb16_pretrain.pth"])
def test_a_planted_pickle_is_refused_or_never_read(dino_folder, images, tmp_path, rel):
    """A code-running pickle in place of a file of the folder: a one-line DsimError naming a file dsim reads
    (the backbone checkpoint, the adapter), and never unpickled; dreamsim's DINO head file is not read at all."""
    folder = linked_copy(dino_folder, tmp_path / "weights")
    marker = tmp_path / "MARKER"
    (folder / rel).unlink()
    planted_checkpoint(folder / rel, marker, "torch")
    if rel == "dino_vitb16_pretrain.pth":
        assert embed(images, build(DINO, weights=str(folder)), tmp_path).features.shape == (3, 768)
    else:
        with pytest.raises(DsimError, match="holds Python objects besides tensors") as caught:
            embed(images, build(DINO, weights=str(folder)), tmp_path)
        message = str(caught.value)
        assert str(folder / rel) in message and "\n" not in message
    assert not marker.exists()


@pytest.mark.slow
def test_a_planted_clip_checkpoint_is_refused(clip_folder, images, tmp_path):
    """A code-running (plain-pickle) CLIP checkpoint of dreamsim's zip: one line naming it, never unpickled."""
    folder = linked_copy(clip_folder, tmp_path / "weights")
    marker = tmp_path / "MARKER"
    (folder / "clip_vitb32_pretrain.pth.tar").unlink()
    planted_checkpoint(folder / "clip_vitb32_pretrain.pth.tar", marker, "pickle")
    with pytest.raises(DsimError, match="holds Python objects besides tensors") as caught:
        embed(images, build(CLIP, weights=str(folder)), tmp_path)
    assert str(folder / "clip_vitb32_pretrain.pth.tar") in str(caught.value) and "\n" not in str(caught.value)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------------
# the checksum covers what is read


_opened: list[str] | None = None
_hook_added = False


def _record_opens(event: str, args: tuple) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], (str, os.PathLike)):
        _opened.append(os.fspath(args[0]))


@contextlib.contextmanager
def recording_opens():
    """Every file Python opens inside the block (``open``, ``torch.load``, imports), via an audit hook."""
    global _opened, _hook_added
    if not _hook_added:  # an audit hook cannot be removed: it is added once, and records only in the block
        sys.addaudithook(_record_opens)
        _hook_added = True
    _opened = []
    try:
        yield _opened
    finally:
        _opened = None


@pytest.mark.slow
def test_every_file_the_build_opens_is_in_the_checksum(dino_folder, tmp_path):
    """The build opens exactly the adapter and the backbone checkpoint (no hub code), and an edit of any of
    them changes the identity (a code change that kept the identity would reuse stale embeddings)."""
    root = dino_folder.resolve()
    extractor = build(DINO, weights=str(dino_folder))
    identity = extractor.identity  # the checksum reads every hashed file: before the recording
    with recording_opens() as opened:
        extractor.load(torch.device("cpu"))
    read = sorted({Path(p).resolve().relative_to(root).as_posix() for p in opened
                   if Path(p).resolve().is_relative_to(root)})
    assert read == [DINO_CHECKPOINT, "dino_vitb16_single_lora/adapter_config.json",
                    "dino_vitb16_single_lora/adapter_model.bin"]
    for index, rel in enumerate(read):
        folder = linked_copy(dino_folder, tmp_path / f"edit{index}")
        rewrite(folder / rel, b"edited")
        assert build(DINO, weights=str(folder)).identity != identity, rel


def test_identity_covers_adapter_and_backbone_files_not_code(tmp_path):
    """Stand-in files: no hub repository is needed, and only the adapter and backbone files count."""
    lora = tmp_path / "dino_vitb16_single_lora"
    lora.mkdir()
    (tmp_path / "checkpoints").mkdir()
    for path in (lora / "adapter_config.json", lora / "adapter_model.safetensors", tmp_path / DINO_CHECKPOINT):
        path.write_bytes(path.name.encode())
    first = build(DINO, weights=str(tmp_path)).identity
    write_hubconf(tmp_path, prelude="# any code")
    (tmp_path / "dino_vitb16_pretrain.pth").write_bytes(b"the DINO head, not read")
    assert build(DINO, weights=str(tmp_path)).identity == first
    for path in (lora / "adapter_config.json", lora / "adapter_model.safetensors", tmp_path / DINO_CHECKPOINT):
        path.write_bytes(b"edited " + path.name.encode())
        assert build(DINO, weights=str(tmp_path)).identity != first, path.name
        first = build(DINO, weights=str(tmp_path)).identity


# ---------------------------------------------------------------------------------------------------
# the same numbers as dreamsim's own loader


@pytest.mark.slow
@pytest.mark.parametrize(("name", "fixture"), [
    (DINO, "dino_folder"), (CLIP, "clip_folder"),
    pytest.param("dreamsim", "ensemble_folder",
                 marks=pytest.mark.heavy),  # the three-branch ensemble: about a minute on two cores
])
def test_embeddings_match_dreamsims_own_loader(name, fixture, images, request, monkeypatch):
    """dsim's build, which never calls torch.hub, and ``dreamsim.dreamsim(pretrained=True, cache_dir=FOLDER)``
    embed a batch alike."""
    folder = request.getfixturevalue(fixture)
    extractor = build(name, weights=str(folder))
    batch = batch_of(extractor, images)
    reference = dreamsim_reference(folder, extractor.dreamsim_type)

    def no_hub(*args, **kwargs):
        raise AssertionError(f"torch.hub.load{args} called")

    monkeypatch.setattr(torch.hub, "load", no_hub)
    with torch.inference_mode():
        ours = extractor.features(extractor.load(torch.device("cpu")), batch)
        expected = reference.embed(batch)
        with reference.disable_adapter():
            without_lora = reference.embed(batch)
    assert ours.shape == (3, extractor.dim)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-4)
    assert (ours - without_lora).abs().max() > 1e-3  # the adapter is applied, and counts in the comparison


def test_dinov2_position_embedding_is_resampled_as_dino_does():
    """DINOv2's ``interpolate_pos_encoding`` is DINO's (+0.1 on the grid, bicubic): dreamsim's DINO ViT is the
    reference (``dreamsim/feature_extraction/vision_transformer.py`` lines 182-202)."""
    from dreamsim.feature_extraction import vision_transformer as vits
    from dsim.extractors.dreamsim import _dinov2_position_embedding

    vit = vits.VisionTransformer(img_size=[518], patch_size=14, depth=1)
    with torch.no_grad():
        vit.pos_embed.normal_(generator=torch.Generator().manual_seed(0))
    tokens = torch.zeros(1, 1 + 16 * 16, 768)
    torch.testing.assert_close(_dinov2_position_embedding(vit.pos_embed.detach(), grid=16),
                               vit.interpolate_pos_encoding(tokens, 224, 224).detach())
