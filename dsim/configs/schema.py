"""The typed cell config: frozen dataclasses built once from a resolved, checked config (:func:`dsim.configs.load`).

These types are the schema of every value a user sets. The config files give the defaults; the
annotations say what a value must be, and :mod:`dsim.configs.checking` reads its rules off them:
``Annotated[int, Min(1)]`` an integer >= 1, ``Literal["raise", "skip"]`` one of those, ``str | None``
a string where the shipped default is null, ``tuple[int, ...]`` a list of integers, a ``Mapping`` an open
table whose owner checks its keys (the dataset catalogue, metric parameters). A group whose keys depend on
the chosen option (an extractor, a generator) types the keys dsim reads and keeps the whole node for its
owner (:attr:`ExtractorConfig.node`, :attr:`GeneratorConfig.node`).

>>> config = CellConfig.build({"device": "cpu", "cache_dir": "cache", "batch_size": 8, "num_workers": None,
...     "progress": False, "tracking": {"uri": None, "store_dir": "mlruns", "experiment": "dsim", "retry_s": 60.0},
...     "extractor": {"name": "pixels", "weights": "default", "layer": "pixels"},
...     "metric": {"name": "fid", "bootstrap": 0, "params": {}},
...     "pair": {"name": None, "reference": "a", "candidate": "b"},
...     "pairing": {"method": "nearest", "extractor": "auto", "weights": "default", "distance": "cosine",
...                 "seed": 0, "size": None, "k": 3},
...     "dataset": {"root": "data", "catalog": {}, "on_error": "raise"}})
>>> config.embedding
EmbedSettings(device='cpu', batch_size=8, num_workers=None, cache_dir='cache', on_error='raise', progress=False)
>>> config.metric.bootstrap, config.analysis.umap is None, config.task.name
(0, True, 'cell')
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from dsim.errors import DsimError


@dataclass(frozen=True)
class Min:
    """A lower bound on a number, as ``Annotated[int, Min(1)]``."""

    value: float


@dataclass(frozen=True)
class Max:
    """An upper bound on a number, as ``Annotated[float, Min(0), Max(1)]``."""

    value: float


#: an integer >= 1 (sizes, counts), an integer >= 0 (seeds, indices), a number >= 0
Count = Annotated[int, Min(1)]
Index = Annotated[int, Min(0)]
NonNegative = Annotated[float, Min(0)]
#: the node a config group was built from, read-only (``compare=False``: two configs are equal by their fields)
Source = Annotated[Mapping[str, Any], "source"]


def _source() -> Any:
    return dataclasses.field(default_factory=lambda: types.MappingProxyType({}), compare=False, repr=False)


@dataclass(frozen=True)
class Node:
    """A config group as a frozen dataclass; :meth:`build` makes one from the group's (checked) dict."""

    @classmethod
    def build(cls, node: Mapping[str, Any], prefix: str = ""):
        """The dataclass of a resolved ``node`` (its keys checked by :func:`dsim.configs.check` first)."""
        hints = typing.get_type_hints(cls, include_extras=True)
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if _is_source(hints[f.name]):
                kwargs[f.name] = frozen(node)
                continue
            key = f.name
            if key not in node:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise DsimError(f"the config has no key {prefix + key!r}: add it to the config files")
                continue
            nested = node_type(hints[f.name])
            value = node[key]
            if nested is not None and isinstance(value, Mapping):
                kwargs[f.name] = nested.build(value, f"{prefix}{key}.")
            elif nested is not None and value is None:
                kwargs[f.name] = None
            else:
                kwargs[f.name] = frozen(value)
        return cls(**kwargs)


def _is_source(hint) -> bool:
    return typing.get_origin(hint) is Annotated and "source" in typing.get_args(hint)[1:]


def node_type(hint) -> type[Node] | None:
    """The :class:`Node` subclass a field holds (``X`` or ``X | None``), else ``None``."""
    for arg in (hint, *typing.get_args(hint)):
        if isinstance(arg, type) and issubclass(arg, Node):
            return arg
    return None


@dataclass(frozen=True, kw_only=True)
class OpenNode(Node):
    """A group whose keys depend on its option (or a whole cell config): the typed fields, plus the node it
    was built from (``source``, read-only, not compared) for the owner that reads the rest."""

    source: Source = _source()

    @property
    def node(self) -> dict:
        """The whole node as a plain dict (``_target_`` and the option's own keys)."""
        return thawed(self.source)


def frozen(value):
    """``value`` read-only all the way down: tables as mapping proxies, lists as tuples."""
    if isinstance(value, Mapping):
        return types.MappingProxyType({k: frozen(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(frozen(v) for v in value)
    return value


def thawed(value):
    """The plain ``dict`` / ``list`` form of a :func:`frozen` value (for JSON, Hydra, MLflow params)."""
    if isinstance(value, Mapping):
        return {k: thawed(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thawed(v) for v in value]
    return value


@dataclass(frozen=True)
class TrackingConfig(Node):
    uri: str | None
    store_dir: str
    experiment: str
    retry_s: NonNegative


@dataclass(frozen=True, kw_only=True)
class ExtractorConfig(OpenNode):
    """The extractor group: its name and the keys shipped options have; the node for ``from_config``."""

    name: str
    weights: str | None = None
    layer: str | None = None
    size: Count | None = None


@dataclass(frozen=True, kw_only=True)
class MetricConfig(OpenNode):
    """The metric group (a project's own metric also declares ``_target_`` and more: read from the node)."""

    name: str
    bootstrap: Index = 0
    floor: bool = False
    params: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))


@dataclass(frozen=True)
class PairConfig(Node):
    name: str | None
    reference: str
    candidate: str


@dataclass(frozen=True)
class PairingConfig(Node):
    """How a paired metric's images are paired (``conf/pairing/``)."""

    method: Literal["nearest", "by_name", "random"]
    extractor: str
    weights: str
    distance: Literal["cosine", "euclidean"]
    seed: Index
    size: Count | None
    k: Count


@dataclass(frozen=True)
class DatasetConfig(Node):
    root: str
    catalog: Mapping[str, str]
    on_error: Literal["raise", "skip"]


#: UMAP's distances that make sense on real-valued features (umap.distances.named_distances has more)
UmapMetric = Literal[
    "euclidean", "cosine", "correlation", "manhattan", "chebyshev", "minkowski", "canberra", "braycurtis"
]


@dataclass(frozen=True)
class UmapConfig(Node):
    dims: tuple[int, ...]
    n_neighbors: Annotated[int, Min(2)]
    min_dist: Annotated[float, Min(0), Max(1)]  # UMAP: at most its spread (1.0)
    metric: UmapMetric
    seed: Index
    nearest_k: Count
    datasets: tuple[str, ...]
    thumbnail: Annotated[int, Min(8)]
    max_thumbnails: Index
    grid_max: Count


@dataclass(frozen=True)
class DistanceConfig(Node):
    n_components: Count
    candidates: tuple[str, ...]
    score_file: str | None
    score_column: str


@dataclass(frozen=True)
class TransferConfig(Node):
    """``analysis=transfer``: a score against the distance from the reference (:mod:`dsim.analysis.transfer`)."""

    scores: str | None
    score_column: str
    distance: Literal["i_dist", "metric"]
    n_components: Count
    bootstrap: Index
    permutations: Index
    seed: Index


@dataclass(frozen=True)
class AnalysisConfig(Node):
    """``analysis=umap``, ``distance``, ``transfer`` or several; ``None`` for one not chosen."""

    umap: UmapConfig | None = None
    distance: DistanceConfig | None = None
    transfer: TransferConfig | None = None


@dataclass(frozen=True)
class TaskConfig(Node):
    """``task=cell`` (a grid cell), ``task=embed`` (one shard of a dataset's embedding: ``dataset``, ``shards``,
    ``shard``) or ``task=transfer_study`` (the transfer study, :mod:`dsim.studies.transfer`: the other keys)."""

    name: Literal["cell", "embed", "transfer_study"] = "cell"
    dataset: str | None = None
    shards: Count = 1
    shard: Index = 0
    train: str | None = None  # task=transfer_study: P, its masks, S, its masks, the far domains
    train_masks: str | None = None
    pool: str | None = None
    pool_masks: str | None = None
    far: tuple[str, ...] = ()
    q: tuple[int, ...] = (1, 3, 7)
    strategies: tuple[str, ...] = ("band", "kcenter", "random")
    seeds: Count = 3
    band: tuple[float, ...] = (0.6, 1.0)
    target_weight: Annotated[float, Min(0)] = 1.0
    bootstrap: Index = 1000
    limit: Count | None = None


@dataclass(frozen=True)
class PerturbConfig(Node):
    name: Literal["none", "blur", "noise", "jpeg", "brightness", "crop"] = "none"
    strength: float = 0
    seed: Index = 0


@dataclass(frozen=True, kw_only=True)
class GeneratorConfig(OpenNode):
    """The generator group (``none``, ``toy`` or a user's): the keys dsim types; the node for ``GeneratorSpec``."""

    name: str = "none"
    checkpoint: str | None = None
    z_dim: Count | None = None
    n_samples: Count | None = None
    seed: Index | None = None
    batch_size: Count | None = None


@dataclass(frozen=True)
class EmbedSettings:
    """The six options of an embedding pass that a cell sets once (:func:`dsim.embed`'s keywords)."""

    device: str = "auto"
    batch_size: int = 32
    num_workers: int | None = None
    cache_dir: str | os.PathLike = "cache"
    on_error: str = "raise"
    progress: bool = True

    def as_kwargs(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class CellConfig(OpenNode):
    """One grid cell's whole config, typed. ``source`` is the resolved config it was built from: the MLflow
    params and the cell key are computed from it (:meth:`as_dict`), so they stay what they were."""

    device: str
    cache_dir: str
    batch_size: Count
    num_workers: Index | None
    progress: bool
    tracking: TrackingConfig
    extractor: ExtractorConfig
    metric: MetricConfig
    pair: PairConfig
    pairing: PairingConfig
    dataset: DatasetConfig
    force: bool = False
    verbose: bool = False
    results_file: str | None = None
    analysis: AnalysisConfig = AnalysisConfig()
    task: TaskConfig = TaskConfig()
    perturb: PerturbConfig = PerturbConfig()
    generator: GeneratorConfig = GeneratorConfig()

    @property
    def embedding(self) -> EmbedSettings:
        """The cell's embedding options, passed as one value to :func:`dsim.embed` and the runners."""
        return EmbedSettings(
            device=self.device,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            cache_dir=self.cache_dir,
            on_error=self.dataset.on_error,
            progress=self.progress,
        )

    def as_dict(self) -> dict:
        """The resolved config as a plain dict (for the MLflow params and the cell key)."""
        return self.node
