"""One grid cell: a metric on a dataset pair (through an extractor), recorded in ``result.json`` and MLflow.

``run_cell`` checks the config, finds both datasets, reuses a finished run of the same cell key or hands
the work to the runner for the metric's kind (``distribution``: two feature sets; ``paired``: image
pairs), then writes the record and logs the run. The names below load their modules on first use, so
``dsim.cell.key`` is cheap to import.
"""

from importlib import import_module

_LAZY = {
    "run_cell": "dsim.cell.run",
    "CellOutput": "dsim.cell.context",
    "DatasetRef": "dsim.cell.context",
    "SideSummary": "dsim.cell.context",
    "pair_name": "dsim.cell.context",
    "resolve_dataset": "dsim.cell.context",
    "RESULT_FILE": "dsim.record",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'dsim.cell' has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
