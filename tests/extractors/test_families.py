"""Any backbone: ``timm/<model>`` and ``open_clip/<model>/<tag>`` (random or local weights offline)."""

import math

import numpy as np
import pytest
import torch
from dsim_testing import one_line_error, run_dsim

import dsim
from dsim.errors import DsimError
from dsim.extractors import build, from_config
from dsim.data.images import load_rgb


def test_a_timm_name_gives_its_width_preprocessing_and_identity():
    import timm

    x = build("timm/convnextv2_atto", weights="random")
    config = timm.data.resolve_model_data_config(timm.create_model("convnextv2_atto"))
    assert x.name == "timm/convnextv2_atto" and x.dim == 320
    assert x.preprocess.size == config["input_size"][-1] == 224
    assert x.preprocess.resize == math.floor(224 / config["crop_pct"]) == 256
    assert x.preprocess.mean == tuple(config["mean"]) and x.preprocess.interpolation == config["interpolation"]
    same = from_config({"_target_": "dsim.extractors.build", "name": "timm", "model": "convnextv2_atto",
                        "weights": "random"})
    assert same.identity == x.identity  # extractor=timm extractor.model=... is the same extractor
    other = build("timm/convnextv2_femto", weights="random")
    assert other.identity != x.identity and other.dim == 384
    assert build("timm/swinv2_base_window12_192.ms_in22k", weights="random").preprocess.size == 192


def test_timm_features_are_the_pooled_pre_logits_and_are_cached(tmp_path, crops):
    x = build("timm/convnextv2_atto", weights="random")
    first = dsim.embed(crops["a"], x, cache_dir=tmp_path, batch_size=8, num_workers=2, progress=False)
    assert first.features.shape == (24, 320) and first.n_computed == 24  # three batches, two workers
    again = dsim.embed(crops["a"], "timm/convnextv2_atto", weights="random", cache_dir=tmp_path, progress=False)
    assert again.n_computed == 0 and np.array_equal(again.features, first.features)
    model = x.load(torch.device("cpu"))
    index = first.ids.index(sorted(first.ids)[0])
    image = x.preprocess(load_rgb(crops["a"] / first.ids[index]))[None]
    with torch.inference_mode():
        expected = model.forward_head(model.forward_features(image), pre_logits=True)[0].numpy()
    assert np.allclose(first.features[index], expected, atol=1e-5)
    assert any(p.name.startswith("timm__convnextv2_atto-") for p in tmp_path.iterdir())  # one folder, no '/'


def test_a_local_weights_file_is_loaded_and_checksummed(tmp_path, crops):
    import timm

    model = timm.create_model("convnextv2_atto", pretrained=False)
    torch.nn.init.constant_(model.stem[0].bias, 0.5)  # weights of its own, unlike the seeded random ones
    path = tmp_path / "atto.pth"
    torch.save(model.state_dict(), path)
    local = build("timm/convnextv2_atto", weights=str(path))
    assert local.resolved_weights.kind == "file" and not local.is_random
    assert local.identity != build("timm/convnextv2_atto", weights="random").identity
    loaded = local.load(torch.device("cpu"))
    assert torch.equal(loaded.stem[0].bias, torch.full_like(loaded.stem[0].bias, 0.5))


def test_an_open_clip_name_gives_the_towers_embedding(tmp_path, crops):
    x = build("open_clip/ViT-B-32/laion2b_s34b_b79k", weights="random")
    assert x.name == "open_clip/ViT-B-32/laion2b_s34b_b79k" and x.dim == 512
    assert x.preprocess.size == 224 and x.preprocess.mean == (0.48145466, 0.4578275, 0.40821073)
    assert x.identity != build("open_clip/ViT-B-32/openai", weights="random").identity
    out = dsim.embed(crops["b"], x, cache_dir=tmp_path, batch_size=16, progress=False)
    assert out.features.shape == (24, 512) and np.isfinite(out.features).all()


def test_unknown_names_are_one_line(tmp_path, crops):
    with pytest.raises(DsimError, match="unknown timm model 'no_such_net'"):
        build("timm/no_such_net")
    with pytest.raises(DsimError, match="has no pretrained tag 'nope'"):
        build("open_clip/ViT-B-32/nope")
    done = run_dsim("extractor=timm", "extractor.model=no_such_net", f"pair.reference={crops['a']}",
                    f"pair.candidate={crops['b']}", "progress=false", cwd=tmp_path, check=False)
    assert "unknown timm model 'no_such_net'" in one_line_error(done)
