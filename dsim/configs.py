"""Where the configuration lives, and the shipped configuration as a schema for every value a user sets.

dsim's own config groups ship inside the package (``dsim.conf``, the repository's top-level ``conf/``;
Hydra reads it as ``pkg://dsim.conf``). A project's ``conf/`` (made by ``dsim init``) or a
``--config-dir`` adds groups and options, or overrides them: :func:`search_dirs` lists them first.

A resolved cell config is compared, key by key, with the defaults of the config files it was composed
from (``config.yaml`` and the chosen file of each group, first found along the search dirs). A key the
files do not have is a typo (``unknown key 'metrc' (did you mean 'metric'?)``); a value of another type
than its default, or outside the documented range or choices, is a one-line
:class:`~dsim.errors.DsimError` naming the key, what it must be and what it got. Open tables (the
dataset catalogue, metric parameters) are left to their owners, which check names and values themselves.
"""

from __future__ import annotations

import difflib
import numbers
from pathlib import Path

import yaml

from dsim.errors import DsimError

CONF_PACKAGE = "dsim.conf"
GROUPS = ("extractor", "metric", "pair", "pairing", "dataset", "experiment", "analysis", "task", "perturb", "generator")
PROJECT_CONF = "conf"  # a project's own config folder, beside where dsim runs


def package_conf_dir() -> Path:
    """The built-in configs: the ``dsim.conf`` package (installed), or the checkout's ``conf/``."""
    try:
        from importlib.resources import files

        return Path(str(files(CONF_PACKAGE)))
    except (ModuleNotFoundError, TypeError):
        return Path(__file__).resolve().parent.parent / "conf"


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


#: tables whose keys are not fixed by the files: their owners check them
OPEN_TABLES = frozenset({"dataset.catalog", "metric.params"})
#: keys a run adds to its own config (never set by users)
ADDED_KEYS = frozenset({"pairing.resolved_extractor", "pairing.resolved_extractor_identity"})
#: range limits beyond the type of the default: key → (minimum, what it is)
MINIMUM = {
    "batch_size": 1,
    "num_workers": 0,
    "tracking.retry_s": 0,
    "metric.bootstrap": 0,
    "pairing.k": 1,
    "pairing.size": 1,
    "pairing.seed": 0,
    "analysis.umap.n_neighbors": 2,
    "analysis.umap.min_dist": 0,
    "analysis.umap.nearest_k": 1,
    "analysis.umap.thumbnail": 8,
    "analysis.umap.max_thumbnails": 0,
    "analysis.umap.grid_max": 1,
    "analysis.umap.seed": 0,
    "analysis.distance.n_components": 1,
    "extractor.size": 1,
    "task.shards": 1,
    "task.shard": 0,
    "perturb.seed": 0,
    "generator.n_samples": 1,
    "generator.seed": 0,
    "generator.batch_size": 1,
}
#: keys with a fixed set of values
CHOICES = {
    "dataset.on_error": ("raise", "skip"),
    "pairing.method": ("nearest", "by_name", "random"),
    "pairing.distance": ("cosine", "euclidean"),
    "task.name": ("cell", "embed"),
    "perturb.name": ("none", "blur", "noise", "jpeg", "brightness", "crop"),
}
#: keys whose default is null but whose values have a type
TYPED_NULLABLE = {
    "num_workers": int,
    "pairing.size": int,
    "results_file": str,
    "tracking.uri": str,
    "pair.name": str,
    "analysis.distance.score_file": str,
    "extractor.size": int,
    "task.dataset": str,
    "generator.checkpoint": str,
    "generator.z_dim": int,
}


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


def choices_of(cfg: dict) -> dict[str, object]:
    """Group choices read off a resolved config (for callers without Hydra's runtime choices)."""
    return {
        "extractor": (cfg.get("extractor") or {}).get("name"),
        "metric": (cfg.get("metric") or {}).get("name"),
        "pairing": (cfg.get("pairing") or {}).get("method"),
        "dataset": "default",
        "pair": "near",
        "analysis": [k for k in ("umap", "distance") if k in (cfg.get("analysis") or {})],
        "task": (cfg.get("task") or {}).get("name", "cell"),
        "perturb": (cfg.get("perturb") or {}).get("name", "none"),
        "generator": (cfg.get("generator") or {}).get("name", "none"),
    }


def check(cfg: dict, choices: dict[str, object] | None = None, conf_dirs=None, *, owned=()) -> None:
    """Raise a one-line :class:`DsimError` for the first unknown key or bad value of a resolved cell config;
    ``owned``: top-level nodes that no config file describes and whose owner checks them (a generator that
    ``dsim.compare`` was given as a dict: :class:`~dsim.generators.GeneratorSpec` checks it)."""
    schema = defaults(choices or choices_of(cfg), conf_dirs)
    schema.setdefault("force", False)
    _check_node({key: value for key, value in cfg.items() if key not in owned}, schema, "")


def _check_node(value: dict, schema: dict, prefix: str) -> None:
    for key, item in value.items():
        path = f"{prefix}{key}"
        if path in ADDED_KEYS:
            continue
        if key not in schema:
            raise DsimError(f"unknown key {path!r}{_suggest(key, schema, prefix)}")
        if path in OPEN_TABLES:
            if not isinstance(item, dict):
                raise DsimError(f"{path} must be a table of keys, got {item!r}")
            continue
        default = schema[key]
        if isinstance(default, dict):
            if not isinstance(item, dict):
                raise DsimError(f"{path} must be a table of keys ({', '.join(default) or 'none'}), got {item!r}")
            _check_node(item, default, path + ".")
        else:
            check_value(path, item, default)


def check_value(path: str, value, default) -> None:
    """Check one value against its default's type and the documented range and choices."""
    if path in CHOICES:
        if value not in CHOICES[path]:
            raise DsimError(f"{path} must be one of {', '.join(CHOICES[path])}, got {value!r}")
        return
    kind = TYPED_NULLABLE.get(path) if default is None else type(default)
    if value is None:
        if default is None:
            return
        raise DsimError(f"{path} must be {_describe(kind, path)}, got null")
    if kind is None:
        return
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    elif kind is str:
        ok = isinstance(value, str) and value != ""
    elif kind is list:
        items = _item_kind(default)
        ok = isinstance(value, (list, tuple)) and (
            items is None or all(isinstance(v, items) and not isinstance(v, bool) for v in value)
        )
    else:
        ok = True
    if ok and path in MINIMUM and isinstance(value, numbers.Real):
        ok = float(value) >= MINIMUM[path]
    if not ok:
        what = _describe(kind, path)
        if kind is list and _item_kind(default) is not None:
            what = f"a list of {_describe(_item_kind(default), path).removeprefix('an ').removeprefix('a ')}s"
        raise DsimError(f"{path} must be {what}, got {value!r}")


def _item_kind(default) -> type | None:
    """The type every item of a non-empty default list shares (int or str), else None (anything goes)."""
    if not isinstance(default, (list, tuple)) or not default:
        return None
    kinds = {type(v) for v in default}
    return kinds.pop() if len(kinds) == 1 and kinds <= {int, str} else None


def _describe(kind, path: str) -> str:
    minimum = f" >= {MINIMUM[path]}" if path in MINIMUM else ""
    return {
        bool: "true or false",
        int: f"an integer{minimum}",
        float: f"a number{minimum}",
        str: "a non-empty string",
        list: "a list",
    }.get(kind, "set")


def unknown_key_message(path: str, schema: dict, *, in_table: bool = False) -> str:
    """``unknown key 'a.b'`` with the closest real key of its table (from ``schema``, see :func:`defaults`);
    ``in_table``: the key came inside a table value (``generator.params={a:1}``), so say how keys are set."""
    node, prefix = schema, ""
    parts = path.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            break
        node, prefix = node[part], f"{prefix}{part}."
    key = path[len(prefix) :]
    group = prefix.split(".", 1)[0]
    chosen = (schema.get(group) or {}).get("name") if group in GROUPS and isinstance(schema.get(group), dict) else None
    return f"unknown key {path!r}" + _suggest(
        key,
        node,
        prefix,
        owner=f" with {group}={chosen}" if chosen else "",
        how=f"; set them as {prefix}KEY=VALUE" if in_table and prefix else "",
    )


def _suggest(key: str, schema: dict, prefix: str, *, owner: str = "", how: str = "") -> str:
    close = difflib.get_close_matches(key, [str(k) for k in schema], n=1, cutoff=0.6)
    if close:
        return f" (did you mean {prefix + close[0]!r}?)"
    table = prefix.rstrip(".")
    if not schema:
        return f" ({table or 'the config'} takes no keys{owner})"
    return f" (known keys{' of ' + table if table else ''}: {', '.join(sorted(map(str, schema)))}{how})"
