"""What a cell runner receives (the pair's datasets) and returns (values, per-image tables, files)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from dsim.configs import DatasetConfig, PairConfig
    from dsim.embeddings.stats_files import StatsFile
    from dsim.extractors.base import Extractor
    from dsim.generators import GeneratorSpec


@dataclass(frozen=True)
class DatasetRef:
    """A pair side as configured: the name shown in records and the folder it resolves to (for a
    generator's side, :class:`~dsim.generators.GeneratorSpec` too: its samples folder)."""

    name: str
    path: Path
    generator: GeneratorSpec | None = None
    stats: StatsFile | None = None  # a reference given as a statistics file


@dataclass(frozen=True)
class SideSummary:
    """What a run record keeps about one dataset of the pair."""

    name: str
    root: Path
    fingerprint: str
    n: int
    skipped: dict[str, str] = field(default_factory=dict)
    manifest: list[tuple[str, str]] = field(default_factory=list)  # (relpath, sha256) of every file
    n_embedded: int = 0  # images that went through the extractor in this run (the rest came from the cache)


@dataclass
class CellOutput:
    """A runner's result.

    ``values``: the named numbers (MLflow metrics, ``result.json`` ``values``). ``tables``: per-image or
    per-pair tables (artifact name → DataFrame, written as CSV). ``files``: further artifacts already
    written into the job directory (plots). ``extractor``: the extractor used, if any.
    ``random_weights``: set when another network the values depend on (e.g. the one that paired the
    images) has random weights; the record's ``random_weights`` is then true as well. ``params``: settings the
    runner resolved itself (``pairing.resolved_extractor``: the extractor ``pairing.extractor=auto`` chose),
    logged as MLflow params beside the config's.
    """

    values: dict[str, float]
    reference: SideSummary
    candidate: SideSummary
    extractor: Extractor | None = None
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    random_weights: bool = False  # some network behind the values (besides ``extractor``) has random weights
    params: dict[str, str] = field(default_factory=dict)  # what the runner resolved (MLflow params beside the config)


@dataclass
class Added:
    """What an analysis step adds to a cell's output: values, tables (new, or replacing one of the same
    name) and files already written into the job folder."""

    values: dict[str, float] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def apply_to(self, output: CellOutput) -> None:
        output.values.update(self.values)
        output.tables.update(self.tables)
        output.files.extend(self.files)


def resolve_dataset(spec: str, dataset: DatasetConfig) -> DatasetRef:
    """A catalogue name (``dataset.catalog``), a folder path or a statistics file (``.npz``) → :class:`DatasetRef`."""
    from dsim.embeddings.stats_files import is_stats_file, load_stats

    spec = str(spec)
    if spec in dataset.catalog:
        return DatasetRef(spec, Path(dataset.root) / dataset.catalog[spec])
    path = Path(spec).expanduser()
    if is_stats_file(path):
        return DatasetRef(path.stem, path, stats=load_stats(path))
    return DatasetRef(path.resolve().name or str(path), path)


def pair_name(pair: PairConfig, reference: DatasetRef, candidate: DatasetRef) -> str:
    return pair.name or f"{reference.name}_vs_{candidate.name}"
