"""``dsim.compare``: one call from two inputs to the values of several metrics (optionally recorded).

>>> import dsim                                                                   # doctest: +SKIP
>>> dsim.compare("data/photos_a", "data/render", metrics=("fid", "kid_poly"))     # doctest: +SKIP
{'fid': {'fid': 343.16}, 'kid_poly': {'kid_poly': 0.387, 'kid_poly_std': 5.6e-17}}

Each side is an image folder (or a catalogue name of ``dataset.catalog``), images in memory (a ``uint8`` or
[0, 1] float array or tensor ``(N, H, W, C)``, ``(N, C, H, W)`` or ``(N, H, W)``, a list of PIL images, a torch
``Dataset`` or ``DataLoader``: :mod:`dsim.data.in_memory` writes them once to a content-addressed folder under
the cache, named ``in_memory:<hash>`` in records unless ``names=`` says otherwise), an N×D feature array
(2-D, numpy or torch: then every metric must be a distribution metric and nothing is embedded), a statistics
file from ``dsim stats`` (the reference only, for FID), or — the candidate — a generator: a
:class:`~dsim.generators.GeneratorSpec`, a generator config dict (``{"name": ..., "_target_": ...}``) or
the name of a ``generator=`` option (``"toy"``). ``params`` gives metrics their parameters
(``{"kid_poly": {"subset_size": 500}}``); any other keyword sets a config key (``device="cpu"``,
``batch_size=64``, ``cache_dir="cache"``, ``**{"pairing.method": "by_name"}``), and a keyword named after a
config group chooses its option (``perturb="blur"``, ``pairing="by_name"``, ``analysis=["umap"]``). Folders
go through the grid cell's own pipeline (:func:`dsim.pipeline.prepare.prepare`: the config check, both
sides resolved and guarded, then the runner), so a mistake raises the :class:`~dsim.errors.DsimError` the
CLI prints; ``record=True`` runs each metric as a cell, logged to MLflow with a ``result.json`` like the CLI's.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dsim.errors import DsimError


def _is_array(x) -> bool:
    import torch

    return isinstance(x, np.ndarray) or torch.is_tensor(x)


def _is_features(x) -> bool:
    """An N×D feature matrix (a 2-D array or tensor); other arrays are images."""
    return _is_array(x) and x.ndim == 2


def _in_memory_sides(sides: dict, names, cfg: dict, progress: bool) -> dict[str, tuple[str, str]]:
    """Each side given as in-memory images, written to its folder under the cache: role → (the name the
    record shows, the folder), for the catalogue of every metric's config."""
    from dsim.data import in_memory

    names = (None, None) if names is None else tuple(names)
    if len(names) != 2 or not all(n is None or (isinstance(n, str) and n.strip()) for n in names):
        raise DsimError(f"compare: names= is (reference name, candidate name), each a string or None; got {names!r}")
    cache_dir = Path(cfg["cache_dir"]).resolve()
    found = {}
    for (role, side), name in zip(sides.items(), names):
        if in_memory.is_images(side):
            made = in_memory.materialize(side, cache_dir, progress=progress)
            found[role] = (name or made.name, str(made.folder))
        elif name is not None:
            raise DsimError(f"compare: names= names in-memory sides only; the {role} is not images in memory")
    if len(found) == 2 and found["reference"][0] == found["candidate"][0] and found["reference"] != found["candidate"]:
        raise DsimError(f"compare: both sides are named {found['reference'][0]!r} but hold different images")
    return found


def _generator_node(candidate):
    from dsim.generators import GeneratorSpec

    if isinstance(candidate, GeneratorSpec):
        node = {
            "name": candidate.name,
            "_target_": candidate.target,
            "params": dict(candidate.params),
            "checkpoint": candidate.checkpoint,
            "z_dim": candidate.z_dim,
            "output_range": list(candidate.output_range),
            "n_samples": candidate.n_samples,
            "seed": candidate.seed,
            "batch_size": candidate.batch_size,
        }
        return node
    if isinstance(candidate, dict) and "_target_" in candidate:
        return dict(candidate)
    return None


#: config groups a keyword of :func:`compare` chooses an option of (``perturb="blur"``, ``analysis=["umap"]``);
#: extractor, metric and generator have their own arguments, and a task is not a comparison
CHOOSABLE = ("pairing", "dataset", "pair", "analysis", "perturb")


def _choices(choices: dict) -> dict:
    from dsim import configs

    return {**configs.default_choices(), **choices}


def _config(choices: dict) -> dict:
    """A cell's config for these group choices, from the config files (as the CLI composes it)."""
    from dsim import configs

    cfg = configs.defaults(_choices(choices), configs.search_dirs())
    cfg.setdefault("force", False)
    cfg.pop("experiment", None)  # a null group: Hydra composes no key
    return cfg


def _set(cfg: dict, dotted: str, value) -> None:
    *path, last = dotted.split(".")
    node = cfg
    for key in path:
        if not isinstance(node.get(key), dict):
            raise DsimError(f"compare: unknown option {dotted!r}")
        node = node[key]
    if last not in node:
        raise DsimError(f"compare: unknown option {dotted!r}")
    node[last] = value


def compare(
    reference,
    candidate,
    metrics=("fid",),
    extractor: str = "efficientnet_lite0",
    *,
    weights: str | None = None,
    params: dict | None = None,
    record: bool = False,
    job_dir: str | Path | None = None,
    generator: str | None = None,
    names: tuple[str | None, str | None] | None = None,
    floor: bool = False,
    **options,
) -> dict[str, dict[str, float]]:
    """The values of each of ``metrics`` between ``reference`` and ``candidate``: ``{metric: {value: float}}``.

    Each side is a folder, a catalogue name, images in memory (arrays or tensors of images, lists of PIL
    images, torch datasets and loaders: written once to ``<cache_dir>/in_memory/<hash>/`` and embedded from
    there, so the store, the cell key and ``record=True`` work as for folders) or a 2-D N×D feature array
    (both sides then; no embedding, no record); the candidate may be a generator. ``names`` =
    ``(reference name, candidate name)`` names in-memory sides in records (default ``in_memory:<hash[:12]>``).
    ``floor=True`` adds each headline value's noise floor — the metric between two seeded random halves of the
    reference, 10 times: ``<value>_floor``, its ``_floor_ci_low``/``_floor_ci_high`` and ``<value>_over_floor``
    (``metric.floor=true`` of a cell; :mod:`dsim.metrics.floor`).
    """
    from dsim import metrics as registry

    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    params = dict(params or {})
    unknown = sorted(set(params) - set(metrics))
    if unknown:
        raise DsimError(f"compare: params for metric(s) {', '.join(unknown)} that are not in metrics={metrics}")
    if _is_features(reference) or _is_features(candidate):
        if not (_is_features(reference) and _is_features(candidate)):
            raise DsimError(
                "compare: give both sides as feature arrays (2-D, N×D), or neither (a folder or images must be "
                "embedded through an extractor, an array of features already is)"
            )
        if record:
            raise DsimError("compare: record=True needs folders (a record names its datasets); arrays are not")
        if names is not None:
            raise DsimError("compare: names= names in-memory images; feature arrays have no record to name them in")
        return {
            name: dict(registry.compute(name, reference, candidate, floor=floor, **params.get(name, {})))
            for name in metrics
        }
    node = _generator_node(candidate)
    choices = {
        "extractor": extractor,
        **({"generator": generator} if generator else {}),
        **{group: options.pop(group) for group in CHOOSABLE if group in options},
    }
    base = _config(choices)
    for key in ("cache_dir", "progress"):
        if key in options:
            _set(base, key, options[key])
    sides = {"reference": reference, "candidate": None if node or generator else candidate}
    held = _in_memory_sides(sides, names, base, bool(base["progress"]))
    shown = {role: held[role][0] if role in held else str(side) for role, side in sides.items()}
    stamp = time.strftime("%Y-%m-%d/%H-%M-%S")
    out = {}
    for name in metrics:
        cfg = _config({**choices, "metric": name})
        cfg["pair"].update(
            reference=shown["reference"], candidate="generator" if node or generator else shown["candidate"]
        )
        if node is not None:
            cfg["generator"] = node
        if weights is not None:
            cfg["extractor"]["weights"] = weights
        cfg["metric"]["params"].update(params.get(name, {}))
        cfg["metric"]["floor"] = bool(floor)
        for key, value in options.items():
            _set(cfg, key, value)
        cfg["dataset"]["catalog"] = {**(cfg["dataset"].get("catalog") or {}), **dict(held.values())}  # name → folder
        folder = Path(job_dir or Path("outputs") / f"compare-{stamp}") / name
        out[name] = _run(
            cfg, {**choices, "metric": name}, folder, record=record, owned=("generator",) if node is not None else ()
        )
    return out


def _run(cfg: dict, choices: dict, folder: Path, *, record: bool, owned=()) -> dict[str, float]:
    """One metric through the cell's own pipeline: prepare → run (→ record → submit with ``record``)."""
    from dsim import configs
    from dsim.data.images import listings_reused
    from dsim.pipeline.prepare import prepare, run
    from dsim.pipeline.run import run_cell

    cfg["cache_dir"] = str(Path(cfg["cache_dir"]).resolve())
    choices, conf_dirs = _choices(choices), configs.search_dirs()
    if record:
        return run_cell(cfg, folder, choices=choices, conf_dirs=conf_dirs, owned=owned)["values"]
    with listings_reused():
        return dict(run(prepare(cfg, choices, conf_dirs, owned=owned)).values)
