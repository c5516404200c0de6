"""What a cell leaves in its job folder: ``result.json`` (its record) or ``failure.json`` (why it failed).

The record is written before anything talks to the tracking store, so a locked, full or unreachable
store can delay the MLflow run but never lose the number. Readers (results tables, the report, lineage,
the sweep's end) go through :func:`read_records` and :func:`read_failures`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from dsim.fileio import atomic_write_text, read_text

RESULT_FILE = "result.json"
FAILURE_FILE = "failure.json"
EMBED_FILE = "embed.json"  # a task=embed job's summary
ARTIFACT_DIR = "artifacts"


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
    return [read_json(file) for file in _files(directory, FAILURE_FILE)
            if not (file.parent / RESULT_FILE).exists() and not (file.parent / EMBED_FILE).exists()]


def read_embed_records(directory: str | Path) -> list[dict]:
    """Every ``embed.json`` (``task=embed`` shards) under ``directory``, in job order."""
    return [read_json(file) for file in _files(directory, EMBED_FILE)]
