"""The ``analysis`` config group: none by default; umap, distance, both (as a preset or a list); CLI checks."""

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from dsim.configs import AnalysisConfig
from dsim.cli.app import CONF_DIR, check_group_overrides, group_choices


def _analysis(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = OmegaConf.to_container(compose(config_name="config", overrides=overrides), resolve=True)
    analysis = AnalysisConfig.build(cfg["analysis"])  # as dsim.configs.load builds it for a cell
    return {name: getattr(analysis, name) for name in ("umap", "distance") if getattr(analysis, name) is not None}


def test_group_choices():
    assert group_choices("analysis") == ["distance", "none", "transfer", "umap", "umap_distance"]


@pytest.mark.parametrize("overrides, keys", [
    ([], set()),
    (["analysis=none"], set()),
    (["analysis=umap"], {"umap"}),
    (["analysis=distance"], {"distance"}),
    (["analysis=umap_distance"], {"umap", "distance"}),
    (["analysis=[umap,distance]"], {"umap", "distance"}),
])
def test_choices_compose(overrides, keys):
    chosen = _analysis(overrides)
    assert set(chosen) == keys
    if "umap" in chosen:
        assert chosen["umap"].dims == (2, 3) and chosen["umap"].seed == 0 and chosen["umap"].nearest_k == 3
    if "distance" in chosen:
        assert chosen["distance"].n_components == 25 and chosen["distance"].score_file is None


def test_options_can_be_overridden():
    chosen = _analysis(["analysis=umap_distance", "analysis.umap.dims=[3]", "analysis.distance.score_file=s.csv"])
    assert chosen["umap"].dims == (3,) and chosen["distance"].score_file == "s.csv"


def test_cli_accepts_lists_and_rejects_unknown_choices(capsys):
    check_group_overrides(["analysis=[umap,distance]", "analysis=umap"])
    with pytest.raises(SystemExit):
        check_group_overrides(["analysis=[umap,nope]"])
    assert "unknown analysis 'nope'" in capsys.readouterr().err
