"""The one way through a cell: :func:`run_cell` (the CLI's) and :func:`compare` (the Python API's).

The names below load their modules on first use.
"""

from importlib import import_module

_LAZY = {"run_cell": "dsim.pipeline.run", "compare": "dsim.pipeline.comparison"}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'dsim.pipeline' has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
