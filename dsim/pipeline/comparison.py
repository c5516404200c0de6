"""``dsim.compare``: one call from two inputs to the values of several metrics (optionally recorded).

>>> import dsim                                                                   # doctest: +SKIP
>>> dsim.compare("data/photos_a", "data/render", metrics=("fid", "kid_poly"))     # doctest: +SKIP
{'fid': {'fid': 343.16}, 'kid_poly': {'kid_poly': 0.387, 'kid_poly_std': 5.6e-17}}

Each side is an image folder (or a catalogue name of ``dataset.catalog``), an N×D feature array
(numpy or torch: then every metric must be a distribution metric and nothing is embedded), a statistics
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
    **options,
) -> dict[str, dict[str, float]]:
    """The values of each of ``metrics`` between ``reference`` and ``candidate``: ``{metric: {value: float}}``."""
    from dsim import metrics as registry

    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    params = dict(params or {})
    unknown = sorted(set(params) - set(metrics))
    if unknown:
        raise DsimError(f"compare: params for metric(s) {', '.join(unknown)} that are not in metrics={metrics}")
    if _is_array(reference) or _is_array(candidate):
        if not (_is_array(reference) and _is_array(candidate)):
            raise DsimError(
                "compare: give both sides as feature arrays, or neither (a folder must be embedded "
                "through an extractor, an array already is)"
            )
        if record:
            raise DsimError("compare: record=True needs folders (a record names its datasets); arrays are not")
        return {name: dict(registry.compute(name, reference, candidate, **params.get(name, {}))) for name in metrics}
    node = _generator_node(candidate)
    choices = {
        "extractor": extractor,
        **({"generator": generator} if generator else {}),
        **{group: options.pop(group) for group in CHOOSABLE if group in options},
    }
    stamp = time.strftime("%Y-%m-%d/%H-%M-%S")
    out = {}
    for name in metrics:
        cfg = _config({**choices, "metric": name})
        cfg["pair"].update(reference=str(reference), candidate="generator" if node or generator else str(candidate))
        if node is not None:
            cfg["generator"] = node
        if weights is not None:
            cfg["extractor"]["weights"] = weights
        cfg["metric"]["params"].update(params.get(name, {}))
        for key, value in options.items():
            _set(cfg, key, value)
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
