"""Where the configuration lives: dsim's own config groups, a project's, ``--config-dir`` folders, and the
defaults a set of group choices composes from them (the files are the one source of default values).

dsim's own config groups ship inside the package (``dsim.conf``, the repository's top-level ``conf/``;
Hydra reads it as ``pkg://dsim.conf``). A project's ``conf/`` (made by ``dsim init``) or a
``--config-dir`` adds groups and options, or overrides them: :func:`search_dirs` lists them first.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml

CONF_PACKAGE = "dsim.conf"
GROUPS = ("extractor", "metric", "pair", "pairing", "dataset", "experiment", "analysis", "task", "perturb", "generator")
PROJECT_CONF = "conf"  # a project's own config folder, beside where dsim runs


def package_conf_dir() -> Path:
    """The built-in configs: the ``dsim.conf`` package (installed), or the checkout's ``conf/``."""
    try:
        from importlib.resources import files

        return Path(str(files(CONF_PACKAGE)))
    except (ModuleNotFoundError, TypeError):
        return Path(__file__).resolve().parents[2] / "conf"


CONF_DIR = package_conf_dir()


def project_conf_dir(cwd: Path | None = None) -> Path | None:
    """``./conf`` when the working folder has one that is not dsim's own (a project made by ``dsim init``)."""
    folder = Path(cwd or Path.cwd()) / PROJECT_CONF
    if folder.is_dir() and folder.resolve() != CONF_DIR.resolve():
        return folder.resolve()
    return None


def search_dirs(extra=()) -> list[Path]:
    """Config folders in lookup order: ``extra`` (``--config-dir``), the project's ``conf/``, dsim's own."""
    dirs = [Path(d).resolve() for d in extra]
    project = project_conf_dir()
    if project is not None and project not in dirs:
        dirs.append(project)
    return dirs + [CONF_DIR]


def group_choices(group: str, conf_dirs=None) -> list[str]:
    """The option names of a config group (its ``.yaml`` files in any of the search dirs)."""
    dirs = [CONF_DIR] if conf_dirs is None else [Path(d) for d in conf_dirs]
    return sorted({p.stem for d in dirs for p in (d / group).glob("*.yaml")})


def find_file(relpath: str, conf_dirs) -> Path | None:
    """The first ``relpath`` (``extractor/pixels.yaml``) along the search dirs."""
    for folder in conf_dirs:
        if (Path(folder) / relpath).is_file():
            return Path(folder) / relpath
    return None


def _load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text()) or {}
    defaults = data.pop("defaults", None) or []
    merged: dict = {}
    for entry in defaults:  # a group file composed of siblings (analysis/umap_distance.yaml)
        if isinstance(entry, str) and entry != "_self_" and (path.parent / f"{entry}.yaml").is_file():
            _merge(merged, _load(path.parent / f"{entry}.yaml"))
    return _merge(merged, data)


def _merge(into: dict, other: dict) -> dict:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
    return into


def defaults(choices: dict[str, object], conf_dirs=None) -> dict:
    """The default config for the given group choices (``{"extractor": "pixels", ...}``), from the files."""
    dirs = [CONF_DIR] if conf_dirs is None else [Path(d) for d in conf_dirs]
    base = _load(find_file("config.yaml", dirs) or CONF_DIR / "config.yaml")
    base.pop("hydra", None)
    for group in GROUPS:
        chosen = choices.get(group)
        names = chosen if isinstance(chosen, (list, tuple)) else [chosen]
        node: dict = {}
        for name in names:
            if name in (None, "null", "None"):
                continue
            file = find_file(f"{group}/{name}.yaml", dirs)
            if file is not None and "@package _global_" not in file.read_text().split("\n", 1)[0]:
                _merge(node, _load(file))
        if node or group not in base:
            base[group] = node
    return base


def default_choices() -> dict[str, object]:
    """The group choices of ``config.yaml``'s defaults list (``{"extractor": "efficientnet_lite0", ...}``)."""
    chosen = {}
    for entry in (yaml.safe_load((CONF_DIR / "config.yaml").read_text()) or {}).get("defaults", []):
        if isinstance(entry, dict) and not any(key.startswith("override ") for key in entry):
            chosen.update(entry)
    return chosen


def choices_of(cfg: Mapping) -> dict[str, object]:
    """Group choices read off a resolved config (for callers without Hydra's runtime choices)."""
    import dataclasses

    from dsim.configs.schema import AnalysisConfig

    analyses = [f.name for f in dataclasses.fields(AnalysisConfig)]  # each option of the group is its own key
    return {
        "extractor": (cfg.get("extractor") or {}).get("name"),
        "metric": (cfg.get("metric") or {}).get("name"),
        "pairing": (cfg.get("pairing") or {}).get("method"),
        "dataset": "default",
        "pair": "near",
        "analysis": [k for k in analyses if k in (cfg.get("analysis") or {})],
        "task": (cfg.get("task") or {}).get("name", "cell"),
        "perturb": (cfg.get("perturb") or {}).get("name", "none"),
        "generator": (cfg.get("generator") or {}).get("name", "none"),
    }
