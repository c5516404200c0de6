"""The typed cell config (dsim.configs.schema): built once from the files' config, frozen, and the one schema
the value checks read (issue 25 item 5)."""

import dataclasses
import itertools

import numpy as np
import pytest
from dsim_testing import CHOICE_SETS, cell_config, config_leaves

from dsim import configs
from dsim.configs import CellConfig, EmbedSettings
from dsim.errors import DsimError

ALL_OPTIONS = [
    {"extractor": e, "metric": m, "analysis": a, "task": t, "perturb": p, "generator": g, "pair": "near",
     "pairing": "nearest", "dataset": "default"}
    for e, m, a, t, p, g in itertools.product(
        configs.group_choices("extractor"), ["fid"], [[], ["umap", "distance"]], configs.group_choices("task"),
        configs.group_choices("perturb"), configs.group_choices("generator"))
]


def _shipped(choices) -> dict:
    cfg = configs.defaults(choices)
    cfg.setdefault("force", False)
    cfg.pop("experiment", None)
    return cfg


@pytest.mark.parametrize("choices", ALL_OPTIONS[:: max(1, len(ALL_OPTIONS) // 40)] + CHOICE_SETS)
def test_every_shipped_option_builds_a_typed_config_holding_the_files_values(choices):
    cfg = _shipped(choices)
    config = configs.load(cfg, choices)
    assert config.as_dict() == cfg  # nothing lost: the MLflow params and the cell key come from it
    for path, default in config_leaves(cfg):
        node = config
        for part in path.split("."):
            if node is None or not dataclasses.is_dataclass(node) or not any(
                    f.name == part for f in dataclasses.fields(node)):
                node = None  # an open node's own key (an extractor option's): kept in its source
                break
            node = getattr(node, part)
        if node is not None:
            expected = tuple(default) if isinstance(default, list) else default
            assert node == expected, path


def test_the_schema_and_the_files_agree_on_every_typed_key():
    """Every key the schema types is in some shipped file, and every shipped key of a closed group is typed."""
    shipped = {path for choices in CHOICE_SETS for path, _ in config_leaves(_shipped(choices))}
    typed = set(configs.RULES)
    assert typed - shipped == set(), "schema keys no config file has"
    open_groups = ("extractor.", "generator.", "metric.params.", "dataset.catalog.")
    untyped = {p for p in shipped - typed if not p.startswith(open_groups)}
    assert untyped == set(), "shipped keys the schema does not type"


def test_rules_come_from_the_annotations():
    assert configs.rule_of("pairing.method", "nearest").choices == ("nearest", "by_name", "random")
    assert configs.rule_of("analysis.umap.thumbnail", 96).minimum == 8
    nullable = configs.rule_of("num_workers", None)
    assert nullable.kind is int and nullable.nullable and nullable.minimum == 0
    assert configs.rule_of("analysis.umap.dims", [2, 3]).item is int
    assert not configs.rule_of("batch_size", 32).accepts(None)
    # a key the schema does not type (an extractor option's own) takes its default's type
    assert configs.rule_of("extractor.pretrained", True).kind is bool
    with pytest.raises(DsimError, match=r"analysis.umap.thumbnail must be an integer >= 8, got 4"):
        configs.check_value("analysis.umap.thumbnail", 4, 96)


def test_the_config_is_frozen_all_the_way_down(tmp_path):
    config = configs.load(cell_config(tmp_path, ["analysis=umap"]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.batch_size = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.pairing.k = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.dataset.catalog["new"] = "x"  # type: ignore[index]
    assert isinstance(config.analysis.umap.dims, tuple)
    plain = config.as_dict()
    plain["dataset"]["catalog"]["new"] = "x"  # a plain copy: the config itself is untouched
    assert "new" not in config.dataset.catalog


def test_a_missing_key_is_one_line(tmp_path):
    cfg = cell_config(tmp_path, [])
    del cfg["pairing"]["k"]
    with pytest.raises(DsimError, match=r"the config has no key 'pairing.k'"):
        CellConfig.build(cfg)


def test_embed_takes_the_cells_settings_as_one_value(tmp_path):
    from PIL import Image

    from dsim.embeddings.embed import embed

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):  # more than one batch of 16, with a worker: the loader path a cell takes
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    settings = EmbedSettings(device="cpu", batch_size=16, num_workers=1, cache_dir=str(tmp_path / "c1"),
                             on_error="raise", progress=False)
    by_settings = embed(folder, "pixels", settings=settings)
    by_keywords = embed(folder, "pixels", device="cpu", batch_size=16, num_workers=1, cache_dir=tmp_path / "c2",
                        progress=False)
    assert by_settings.n_computed == 40 and (tmp_path / "c1").is_dir() and not (tmp_path / "cache").exists()
    np.testing.assert_array_equal(by_settings.features, by_keywords.features)
    with pytest.raises(DsimError, match="either as settings= or as keywords"):
        embed(folder, "pixels", settings=settings, batch_size=8)
