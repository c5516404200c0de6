"""What a cell leaves in its job folder: ``result.json`` (its record) or ``failure.json`` (why it failed).

The record is written before anything talks to the tracking store, so a locked, full or unreachable
store can delay the MLflow run but never lose the number. Readers (results tables, the report, lineage,
the sweep's end) go through :func:`read_records` and :func:`read_failures`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from dsim.util.fileio import atomic_write_text, read_text

RESULT_FILE = "result.json"
FAILURE_FILE = "failure.json"
EMBED_FILE = "embed.json"  # a task=embed job's summary
STUDY_FILE = "study.json"  # a task=transfer_study job's result (written last: the job folder is complete)
ARTIFACT_DIR = "artifacts"
#: the MLflow tag holding a run's cell key (dsim.cell.key), by which a finished cell is found and reused
CELL_KEY_TAG = "dsim.cell_key"


def json_safe(value):
    """Strict JSON: non-finite floats (e.g. a correlation of a constant series) become ``null``."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, content: dict, *, sort_keys: bool = False) -> None:
    """``content`` as strict, indented JSON, written atomically."""
    atomic_write_text(path, json.dumps(json_safe(content), indent=2, sort_keys=sort_keys, allow_nan=False) + "\n")


def read_json(path: Path) -> dict:
    return json.loads(read_text(path))


SIDES = ("reference", "candidate")


@dataclass(frozen=True)
class Side:
    """One dataset of a cell's pair, as recorded: shown name, folder, content fingerprint, DVC lineage,
    images used, images skipped (relpath → reason) and images forwarded through the extractor in this cell."""

    name: str
    path: str
    fingerprint: str
    lineage: dict = field(default_factory=dict)
    n: int = 0
    skipped: dict = field(default_factory=dict)
    embedded: int = 0


@dataclass
class CellRecord:
    """A cell's record: the one structure behind ``result.json``, the MLflow run's tags and dataset inputs,
    the results tables and ``dsim lineage``.

    ``result.json`` keeps its flat layout (``reference``: the folder, ``reference_name``,
    ``reference_fingerprint``, ``reference_lineage``, ``n_reference``, ``skipped``/``embedded`` by side, ...);
    :meth:`to_json` writes it and :meth:`from_json` reads it back, also from records of older versions.
    ``value_roles`` says which values are headline numbers, spreads, interval bounds or details.
    """

    extractor: str
    metric: str
    pair: str
    reference: Side
    candidate: Side
    values: dict
    value_roles: dict | None = None
    extractor_identity: str = "none"
    weights_checksum: str = "none"
    random_weights: bool = False
    git_commit: str = "unknown"
    dvc_experiment: str | None = None
    dsim_version: str = "unknown"
    cell_key: str | None = None
    config: dict = field(default_factory=dict)
    mlflow_run_id: str | None = None
    tracking: str = "pending"
    reused: bool = False
    generator: dict | None = None  # the candidate's generator (describe() and identity), when it has one
    interval: dict | None = None  # how the values' _ci_low/_ci_high were made (metric.bootstrap > 0)
    floor: dict | None = None  # how the values' noise floors were made (metric.floor = true)
    #: value key → [lowest, highest] its metric declares (None: unbounded); tables show rounding noise at the bound
    value_ranges: dict | None = None
    #: the metric's caveats while computing this cell ({"category", "message", "count"}; printed with verbose=true)
    warnings: list = field(default_factory=list)

    def side(self, role: str) -> Side:
        return getattr(self, role)

    def headline(self) -> list[str] | None:
        """The headline value names (``None`` for a record written before value roles)."""
        if self.value_roles is None:
            return None
        return [name for name, role in self.value_roles.items() if role == "headline"]

    def to_json(self) -> dict:
        sides = {role: self.side(role) for role in SIDES}
        out: dict[str, Any] = {
            "extractor": self.extractor,
            "metric": self.metric,
            "pair": self.pair,
            **{role: side.path for role, side in sides.items()},
            **{f"n_{role}": side.n for role, side in sides.items()},
            "values": self.values,
            "value_roles": self.value_roles,
            "value_ranges": self.value_ranges,
        }
        for key in ("name", "fingerprint", "lineage"):
            out.update({f"{role}_{key}": getattr(side, key) for role, side in sides.items()})
        out.update(
            extractor_identity=self.extractor_identity,
            weights_checksum=self.weights_checksum,
            random_weights=self.random_weights,
            skipped={role: side.skipped for role, side in sides.items()},
            n_skipped=sum(len(side.skipped) for side in sides.values()),
            embedded={role: side.embedded for role, side in sides.items()},
            git_commit=self.git_commit,
            dvc_experiment=self.dvc_experiment,
            dsim_version=self.dsim_version,
            cell_key=self.cell_key,
            config=self.config,
            mlflow_run_id=self.mlflow_run_id,
            tracking=self.tracking,
            reused=self.reused,
            generator=self.generator,
            interval=self.interval,
            floor=self.floor,
            warnings=self.warnings,
        )
        return out

    @classmethod
    def from_json(cls, data: dict) -> CellRecord:
        skipped, embedded = data.get("skipped") or {}, data.get("embedded") or {}
        sides = {
            role: Side(
                name=data.get(f"{role}_name") or Path(data.get(role) or "").name,
                path=data.get(role) or "",
                fingerprint=data.get(f"{role}_fingerprint", ""),
                lineage=data.get(f"{role}_lineage") or {},
                n=data.get(f"n_{role}", 0),
                skipped=dict(skipped.get(role) or {}),
                embedded=int(embedded.get(role) or 0),
            )
            for role in SIDES
        }
        own = {f.name for f in fields(cls)} - {"reference", "candidate"}
        return cls(reference=sides["reference"], candidate=sides["candidate"], **{k: data[k] for k in own if k in data})

    def as_dict(self) -> dict:
        """Every field, sides nested (for code that wants plain data)."""
        return asdict(self)


def _job_order(path: Path, root: Path):
    first = path.relative_to(root).parts[0]
    return (0, int(first), "") if first.isdigit() else (1, 0, str(path))


def _files(directory: str | Path, name: str) -> list[Path]:
    root = Path(directory)
    return sorted(root.rglob(name), key=lambda p: _job_order(p, root))


def read_records(directory: str | Path) -> list[dict]:
    """Every ``result.json`` under ``directory`` (a sweep or run folder), in job order."""
    return [read_json(file) for file in _files(directory, RESULT_FILE)]


def read_failures(directory: str | Path) -> list[dict]:
    """Every ``failure.json`` under ``directory`` whose job finished nothing since (in job order)."""
    return [
        read_json(file)
        for file in _files(directory, FAILURE_FILE)
        if not any((file.parent / done).exists() for done in (RESULT_FILE, EMBED_FILE, STUDY_FILE))
    ]


def read_embed_records(directory: str | Path) -> list[dict]:
    """Every ``embed.json`` (``task=embed`` shards) under ``directory``, in job order."""
    return [read_json(file) for file in _files(directory, EMBED_FILE)]


def read_study_records(directory: str | Path) -> list[dict]:
    """Every ``study.json`` (``task=transfer_study`` jobs) under ``directory``, in job order, with its folder."""
    return [{**read_json(file), "folder": str(file.parent)} for file in _files(directory, STUDY_FILE)]
