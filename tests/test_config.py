"""Every config composes, and every group option instantiates (the lightning-hydra-template rule)."""

import warnings

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from dsim import metrics
from dsim.cell import resolve_dataset
from dsim.cli import CONF_DIR, group_choices
from dsim.extractors import Extractor


def _compose(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=True)


@pytest.mark.parametrize("name", group_choices("extractor"))
def test_extractor_configs_instantiate(name):
    cfg = _compose([f"extractor={name}"])
    extractor = instantiate(cfg.extractor)
    assert isinstance(extractor, Extractor) and extractor.name == name and extractor.dim > 0
    assert len(extractor.identity) == 64


@pytest.mark.parametrize("name", group_choices("metric"))
def test_metric_configs_name_a_registered_metric_with_valid_params(name):
    cfg = _compose([f"metric={name}"])
    assert cfg.metric.name in metrics.METRICS
    params = OmegaConf.to_container(cfg.metric.params)
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metrics.SubsetSizeWarning)  # 30 samples < the default subset size
        values = metrics.compute(cfg.metric.name, rng.normal(size=(30, 4)), rng.normal(size=(30, 4)), **params)
    assert cfg.metric.name in values


@pytest.mark.parametrize("name", group_choices("pair"))
def test_pair_configs_resolve_to_catalogue_datasets(name):
    cfg = OmegaConf.to_container(_compose([f"pair={name}"]), resolve=False)
    for side in ("reference", "candidate"):
        assert cfg["pair"][side] in cfg["dataset"]["catalog"]
        assert resolve_dataset(cfg["pair"][side], cfg["dataset"]).path.parts[0] == "data"


@pytest.mark.parametrize("name", group_choices("experiment"))
def test_experiment_presets_sweep_only_existing_choices(name):
    cfg = _compose([f"experiment={name}"])
    for group, choices in cfg.hydra.sweeper.params.items():
        for choice in str(choices).split(","):
            assert choice in group_choices(group), (group, choice)


def test_every_group_has_a_default_and_dataset_options():
    cfg = _compose([])
    assert cfg.dataset.on_error in ("raise", "skip") and cfg.device == "auto"
    assert set(cfg.hydra.runtime.choices) >= {"extractor", "metric", "pair", "dataset"}
