"""conf/extractor/*.yaml and the extractor table of docs/reference/extractors.md are rendered from the extractor classes (the
single source of truth): these tests fail when one of them drifts (fix: python -m dsim.extractors.catalog --write)."""

from __future__ import annotations

import pytest
import yaml

from dsim.extractors import EXTRACTORS, available, build
from dsim.extractors.catalog import CONF_DIR, README, TABLE_BEGIN, TABLE_END, config_text, table_text

FIX = "run `python -m dsim.extractors.catalog --write`"


@pytest.mark.parametrize("name", available())
def test_each_config_is_the_rendering_of_its_class(name):
    path = CONF_DIR / f"{name}.yaml"
    assert path.exists(), f"{path} missing: {FIX}"
    assert path.read_text() == config_text(name), f"{path} disagrees with its class: {FIX}"
    cfg = yaml.safe_load(path.read_text())
    extractor = build(**{k: v for k, v in cfg.items() if k != "_target_"})
    assert extractor.layer == EXTRACTORS[name].default_layer() and extractor.weights == "default"


def test_every_config_names_a_registered_extractor():
    assert sorted(p.stem for p in CONF_DIR.glob("*.yaml")) == available()


def test_readme_table_is_the_rendering_of_the_classes():
    assert f"{TABLE_BEGIN}\n{table_text()}{TABLE_END}" in README.read_text(), f"docs/reference/extractors.md's table disagrees with the classes: {FIX}"


def test_declared_comments_say_what_the_class_does():
    text = config_text("inception")
    assert "# output:     pool → 2048-d; logits → 1008-d" in text
    assert "# preprocess: native size (no resize), uint8 0..255" in text
    assert "layer: pool" in text and "size: null" in text
