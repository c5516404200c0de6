"""The configuration: where the files live (:mod:`~dsim.configs.files`), the typed cell config that is the
schema of every value (:mod:`~dsim.configs.schema`), and the check of a resolved config against both
(:mod:`~dsim.configs.checking`). :func:`load` is the pipeline's boundary: a resolved config ``dict`` in, a
checked, frozen :class:`CellConfig` out; nothing past it reads the dict.
"""

from __future__ import annotations

from collections.abc import Mapping

from dsim.configs.checking import OPEN_TABLES, RULES, Rule, check, check_value, rule_of, unknown_key_message
from dsim.configs.files import (
    CONF_DIR,
    CONF_PACKAGE,
    GROUPS,
    PROJECT_CONF,
    choices_of,
    default_choices,
    defaults,
    find_file,
    group_choices,
    package_conf_dir,
    project_conf_dir,
    search_dirs,
)
from dsim.configs.schema import (
    AnalysisConfig,
    CellConfig,
    DatasetConfig,
    DistanceConfig,
    EmbedSettings,
    ExtractorConfig,
    GeneratorConfig,
    MetricConfig,
    PairConfig,
    PairingConfig,
    PerturbConfig,
    TaskConfig,
    TrackingConfig,
    TransferConfig,
    UmapConfig,
)

__all__ = [
    "CONF_DIR",
    "CONF_PACKAGE",
    "GROUPS",
    "OPEN_TABLES",
    "PROJECT_CONF",
    "RULES",
    "AnalysisConfig",
    "CellConfig",
    "DatasetConfig",
    "DistanceConfig",
    "EmbedSettings",
    "ExtractorConfig",
    "GeneratorConfig",
    "MetricConfig",
    "PairConfig",
    "PairingConfig",
    "PerturbConfig",
    "Rule",
    "TaskConfig",
    "TrackingConfig",
    "TransferConfig",
    "UmapConfig",
    "check",
    "check_value",
    "choices_of",
    "default_choices",
    "defaults",
    "find_file",
    "group_choices",
    "load",
    "package_conf_dir",
    "project_conf_dir",
    "rule_of",
    "search_dirs",
    "unknown_key_message",
]


def load(cfg: Mapping, choices: dict | None = None, conf_dirs=None, *, owned=()) -> CellConfig:
    """Check a resolved cell config against its files and the schema (one-line :class:`~dsim.errors.DsimError`
    s, see :func:`check`) and build its :class:`CellConfig`."""
    check(cfg, choices, conf_dirs, owned=owned)
    return CellConfig.build(cfg)
