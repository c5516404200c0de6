"""A metric's caveats (:class:`~dsim.metrics.MetricWarning`: too few samples for a full-rank covariance, a
subset size clipped to the data) are part of a cell's result, not terminal noise: they are collected while
the cell computes, kept in ``result.json`` (``warnings``) and an MLflow tag, and summarised once per sweep
(:func:`dsim.results.caveats_summary`); ``verbose=true`` prints each one. Other warnings print as before.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from dsim.metrics import MetricWarning

#: the MLflow tag that holds a cell's caveats (one per line)
WARNINGS_TAG = "dsim.warnings"


@contextmanager
def collected(verbose: bool = False) -> Iterator[list[dict]]:
    """Collect the metric warnings raised inside the block into the yielded list, one entry per distinct
    message (``{"category", "message", "count"}``); other warnings (and, with ``verbose``, these too) are
    shown as usual, after the block."""
    found: list[dict] = []
    caught: list = []
    failed = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", MetricWarning)  # every occurrence counts, not only a location's first
            yield found
    except BaseException:
        failed = True  # nothing is recorded for a failed cell: everything is shown
        raise
    finally:
        _sort(caught, found, verbose or failed)


def _sort(caught: list, found: list[dict], verbose: bool) -> None:
    by_message: dict[str, dict] = {}
    for item in caught:
        if issubclass(item.category, MetricWarning):
            message = str(item.message)
            entry = by_message.setdefault(message, {"category": item.category.__name__, "message": message})
            entry["count"] = entry.get("count", 0) + 1
            if not verbose:
                continue
        warnings.showwarning(item.message, item.category, item.filename, item.lineno)
    found.extend(by_message.values())


def tags(caveats: list[dict]) -> dict[str, str]:
    """The MLflow tag of a cell's caveats, one per line (MLflow keeps up to 8000 characters); none without."""
    lines = [c["message"] + (f" (x{c['count']})" if c.get("count", 1) > 1 else "") for c in caveats]
    return {WARNINGS_TAG: "\n".join(lines)[:8000]} if lines else {}
