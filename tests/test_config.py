"""Every config composes, and every group option instantiates (the lightning-hydra-template rule)."""

import warnings

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from dsim import metrics
from dsim.cell import resolve_dataset
from dsim.configs import DatasetConfig
from dsim.cli.app import CONF_DIR, group_choices
from dsim.extractors import Extractor


def _compose(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=True)


@pytest.mark.parametrize("name", group_choices("extractor"))
def test_extractor_configs_instantiate(name, tmp_path, monkeypatch):
    overrides = []
    if name == "hf":  # its width is read from the repository's config.json: a tiny one in a local Hub cache
        from hf_hub_cache import tiny_hub

        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        tiny_hub(tmp_path / "hub", tmp_path / "saved", kinds=("vit",))
        overrides = ["extractor.model=dsim-test/vit"]
    cfg = _compose([f"extractor={name}", *overrides])
    extractor = instantiate(cfg.extractor)  # finds no weights yet: they are resolved on first use
    assert isinstance(extractor, Extractor) and extractor.name.split("/")[0] == name and extractor.dim > 0
    # the identity needs the weights' checksum; hub weights are absent offline, random ones never are
    random = instantiate(_compose([f"extractor={name}", *overrides, "extractor.weights=random"]).extractor)
    assert len(random.identity) == 64


@pytest.mark.parametrize("name", group_choices("metric"))
def test_metric_configs_name_a_registered_metric_with_valid_params(name):
    cfg = _compose([f"metric={name}"])
    assert cfg.metric.name in metrics.METRICS
    if metrics.METRICS[cfg.metric.name].kind == "paired":
        pytest.skip("image-pair metric: checked in tests/paired/test_paired_configs.py")
    params = OmegaConf.to_container(cfg.metric.params)
    if metrics.METRICS[cfg.metric.name].kind == "generator":  # its config's params drive a (small) toy generator
        from dsim.generators import GeneratorSpec

        toy = GeneratorSpec.from_config({**OmegaConf.to_container(_compose(["generator=toy"]).generator),
                                         "params": {"z_dim": 8, "w_dim": 8, "resolution": 16}})
        params.update(n_samples=4, lpips_weights="random")
        values = metrics.METRICS[cfg.metric.name].fn(toy.load("cpu"), **params)
        assert values[cfg.metric.name] > 0 and values["n_kept"] == 4
        return
    rng = np.random.default_rng(0)
    if "labels" in params:  # a label file is a cell's; in Python, labels are given per side
        assert params.pop("labels") is None
        params.update(reference_labels=np.repeat(["a", "b"], 15), candidate_labels=np.tile(["a", "b"], 15))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metrics.SubsetSizeWarning)  # 30 samples < the default subset size
        values = metrics.compute(cfg.metric.name, rng.normal(size=(30, 4)), rng.normal(size=(30, 4)), **params)
    assert values and all(isinstance(v, float) for v in values.values())


@pytest.mark.parametrize("name", group_choices("pair"))
def test_pair_configs_resolve_to_catalogue_datasets(name):
    cfg = OmegaConf.to_container(_compose([f"pair={name}"]), resolve=False)
    for side in ("reference", "candidate"):
        assert cfg["pair"][side] in cfg["dataset"]["catalog"]
        assert resolve_dataset(cfg["pair"][side], DatasetConfig.build(cfg["dataset"])).path.parts[0] == "data"


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


def test_pair_configs_match_the_default_data_readme():
    """data/README.md lists the default pairs from sample_data.DEFAULT_PAIRS: it must say what conf/pair does."""
    from dsim.data.samples import DEFAULT_PAIRS

    for name, (reference, candidate) in DEFAULT_PAIRS.items():
        cfg = _compose([f"pair={name}"])
        assert (cfg.pair.reference, cfg.pair.candidate) == (reference, candidate)
