"""Every paired-metric config and every pairing config composes, and its params run on image pairs."""

import dataclasses

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from dsim import metrics
from dsim.configs import PairingConfig
from dsim.cli.app import CONF_DIR, group_choices
from dsim.cell.pairing import METHODS

PAIRED_CONFIGS = [n for n in group_choices("metric")
                  if metrics.METRICS[OmegaConf.load(CONF_DIR / "metric" / f"{n}.yaml").name].kind == "paired"]
SLOW = {"dreamsim", "lpips_vgg"}     # random-weight ViT ensemble / VGG-16: params checked, not run


def _compose(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def test_all_paired_metrics_have_a_config():
    names = {OmegaConf.load(CONF_DIR / "metric" / f"{n}.yaml").name for n in PAIRED_CONFIGS}
    assert names == {n for n, s in metrics.METRICS.items() if s.kind == "paired"}


@pytest.mark.parametrize("name", PAIRED_CONFIGS)
def test_paired_metric_configs_run_on_image_pairs(name):
    cfg = _compose([f"metric={name}"])
    spec = metrics.METRICS[cfg.metric.name]
    params = metrics.check_params(spec, OmegaConf.to_container(cfg.metric.params))
    assert params == spec.defaults()
    if name in SLOW or spec.embedding:  # DreamSim's functional form takes embeddings (tested elsewhere)
        return
    if "weights" in params:
        params["weights"] = "random"
    images = np.random.default_rng(0).integers(0, 256, size=(2, 176, 176, 3), dtype=np.uint8)
    values = metrics.compute(cfg.metric.name, images, images[::-1], **params)
    assert cfg.metric.name in values and np.isfinite(values[cfg.metric.name])


@pytest.mark.parametrize("name", group_choices("pairing"))
def test_pairing_configs_compose_with_every_key(name):
    cfg = OmegaConf.to_container(_compose([f"pairing={name}"]).pairing)
    assert cfg["method"] == name in METHODS and set(cfg) == {f.name for f in dataclasses.fields(PairingConfig)}


def test_default_pairing_is_nearest():
    assert _compose([]).pairing.method == "nearest"
