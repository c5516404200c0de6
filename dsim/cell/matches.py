"""The best, average and worst pairs of a paired run.

"Average" pairs are those whose value is closest to the mean over all pairs. Each group holds at most
``k`` pairs; groups may share pairs when there are fewer than ``3·k``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

GROUPS = ("best", "average", "worst")


def select_matches(table: pd.DataFrame, column: str, *, k: int = 3, higher_is_better: bool) -> pd.DataFrame:
    """Rows of ``table`` in three groups, with ``group`` and ``rank`` columns in front.

    Best: the ``k`` best values (highest when ``higher_is_better``); worst: the ``k`` worst, worst first;
    average: the ``k`` closest to the mean. Ties keep table order (stable sorts).

    >>> import pandas as pd
    >>> t = pd.DataFrame({"v": [1.0, 5.0, 3.0, 2.0, 4.0]})
    >>> m = select_matches(t, "v", k=1, higher_is_better=True)
    >>> list(zip(m["group"], m["v"]))
    [('best', 5.0), ('average', 3.0), ('worst', 1.0)]
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    values = table[column].to_numpy(dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(values))
    sign = -1.0 if higher_is_better else 1.0  # sort keys: best first, stable on ties
    best = finite[np.argsort(sign * values[finite], kind="stable")]
    worst = finite[np.argsort(-sign * values[finite], kind="stable")]
    mean = values[finite].mean() if finite.size else np.nan
    average = finite[np.argsort(np.abs(values[finite] - mean), kind="stable")]
    parts = []
    for group, indices in zip(GROUPS, (best, average, worst)):
        chosen = table.iloc[indices[:k]].copy()
        chosen.insert(0, "rank", np.arange(1, len(chosen) + 1))
        chosen.insert(0, "group", group)
        parts.append(chosen)
    return pd.concat(parts, ignore_index=True)
