"""What every metric returns: named scalars (a plain ``dict``) plus optional per-image arrays."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

SIDES = ("reference", "candidate")


class MetricValues(dict):
    """Scalar results by name, as a ``dict[str, float]``, with per-image scores in :attr:`per_image`.

    Being a ``dict``, it goes straight into ``json.dumps``, MLflow's ``log_metrics`` and ``==``
    comparisons; the per-image arrays ride alongside and are never mixed into the scalars.

    ``per_image`` maps a side (``"reference"`` or ``"candidate"``) to ``{column: array}``, each array
    1-D and aligned with that side's input rows (row ``i`` of the array is input row ``i``).

    >>> import json
    >>> import numpy as np
    >>> from dsim.metrics import MetricValues
    >>> values = MetricValues({"odist": 2.5}, per_image={"candidate": {"i_dist": np.array([2.0, 3.0])}})
    >>> json.dumps(values), values == {"odist": 2.5}, values.per_image["candidate"]["i_dist"].tolist()
    ('{"odist": 2.5}', True, [2.0, 3.0])
    """

    def __init__(self, values: Mapping[str, float] | tuple = (), *, per_image: Mapping | None = None):
        super().__init__(values)
        self.per_image: dict[str, dict[str, np.ndarray]] = {}
        for side, columns in (per_image or {}).items():
            if side not in SIDES:
                raise ValueError(f"per_image side must be one of {SIDES}, got {side!r}")
            self.per_image[side] = {name: _column(name, array) for name, array in columns.items()}

    def __repr__(self) -> str:
        if not self.per_image:
            return f"MetricValues({dict.__repr__(self)})"
        columns = {side: sorted(cols) for side, cols in self.per_image.items()}
        return f"MetricValues({dict.__repr__(self)}, per_image={columns})"

    def __reduce__(self):
        return (_rebuild, (dict(self), self.per_image))


def _rebuild(values, per_image):
    return MetricValues(values, per_image=per_image)


def _column(name: str, array) -> np.ndarray:
    a = np.asarray(array)
    if a.ndim != 1:
        raise ValueError(f"per-image column {name!r} must be 1-D, got shape {a.shape}")
    return a


def as_metric_values(values) -> MetricValues:
    """``values`` itself if it already is a :class:`MetricValues`, else a copy wrapped as one."""
    return values if isinstance(values, MetricValues) else MetricValues(values)
