"""One grid cell: a metric on a dataset pair (through an extractor), recorded in ``result.json`` and MLflow.

The runner for each metric kind (``distribution``: two feature sets; ``paired``: image pairs;
``generated``: a generator's samples), what a cell resolved (:mod:`dsim.cell.context`), its key and its
record. :func:`dsim.pipeline.run_cell` drives them. The names below load their modules on first use, so
``dsim.cell.key`` is cheap to import.
"""

from importlib import import_module

_LAZY = {
    "CellOutput": "dsim.cell.context",
    "DatasetRef": "dsim.cell.context",
    "SideSummary": "dsim.cell.context",
    "pair_name": "dsim.cell.context",
    "resolve_dataset": "dsim.cell.context",
    "RESULT_FILE": "dsim.records",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'dsim.cell' has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
