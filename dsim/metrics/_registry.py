"""The metric registry: one :class:`MetricSpec` per name, and :func:`compute` to run one by name."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from dsim.errors import DsimError
from dsim.metrics._checks import positive_int
from dsim.metrics._values import MetricValues, as_metric_values
from dsim.metrics.bootstrap import bootstrap_intervals

INPUTS = ("features", "logits")


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric: ``fn(reference, candidate, **params) -> MetricValues``.

    ``input`` names the extractor output the metric needs: ``"features"`` (the embedding) or
    ``"logits"`` (the class-logits layer, for the Inception Score).
    """

    name: str
    fn: Callable[..., MetricValues]
    higher_is_better: bool
    kind: str = "distribution"
    doc: str = ""
    input: str = "features"
    #: the same metric from streamed :class:`~dsim.metrics.frechet.FeatureStats` of each side (bounded memory)
    from_stats: Callable[..., MetricValues] | None = None


METRICS: dict[str, MetricSpec] = {}


def register(
    name: str,
    fn: Callable,
    *,
    higher_is_better: bool,
    kind: str = "distribution",
    doc: str = "",
    input: str = "features",
    from_stats: Callable | None = None,
):
    """Add ``fn`` to :data:`METRICS` under ``name``; ``doc`` defaults to the docstring's first line."""
    if name in METRICS:
        raise ValueError(f"metric {name!r} is already registered")
    if input not in INPUTS:
        raise ValueError(f"metric {name!r}: input must be one of {INPUTS}, got {input!r}")
    doc = doc or (inspect.getdoc(fn) or "").split("\n", 1)[0]
    METRICS[name] = spec = MetricSpec(name, fn, higher_is_better, kind, doc, input, from_stats)
    return spec


def keyword_params(fn: Callable) -> list[str]:
    """The keyword-only parameters of a metric function (what ``metric.params.*`` may set)."""
    return [p.name for p in inspect.signature(fn).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]


def lookup(name: str, declared: dict | None = None) -> MetricSpec:
    """The metric registered as ``name`` — or a project's own: declared by a config with ``_target_`` (a
    function, with ``higher_is_better`` and optionally ``input``), or by an installed package's
    ``dsim.metrics`` entry point (a module that registers it, or the function itself)."""
    spec = METRICS.get(name)
    if spec is not None:
        return spec
    from dsim.plugins import entry_point, locate

    if declared and declared.get("_target_"):
        return register(name, locate(declared["_target_"]), higher_is_better=bool(declared.get("higher_is_better", False)),
                        input=declared.get("input", "features"))
    found = entry_point("dsim.metrics", name)
    if found is not None and name not in METRICS and callable(found) and not isinstance(found, type):
        register(name, found, higher_is_better=bool(getattr(found, "higher_is_better", False)))
    if name in METRICS:
        return METRICS[name]
    raise DsimError(f"unknown metric {name!r}; choose one of: {', '.join(available())}")


def available() -> list[str]:
    """Names of the registered metrics, sorted."""
    return sorted(METRICS)


def compute(
    name: str, reference, candidate, *, bootstrap: int = 0, bootstrap_seed: int = 0, max_samples: int | None = None,
    **params
) -> MetricValues:
    """Run the metric registered as ``name`` on two N×D feature sets (or logits, see ``MetricSpec.input``).

    With ``bootstrap=N > 0``, both sets are also resampled with replacement N times (seeded by
    ``bootstrap_seed``; a ``kind="paired"`` metric's pairs are resampled together) and every scalar
    value except ``*_std`` gains ``<value>_ci_low`` / ``<value>_ci_high``: a 95% percentile interval
    (see :mod:`dsim.metrics.bootstrap`). Per-image scores, when the metric has them, are in the
    result's ``per_image``.

    >>> import numpy as np
    >>> from dsim.metrics import compute
    >>> features = np.random.default_rng(0).normal(size=(100, 4))
    >>> compute("fid", features, features)["fid"] < 1e-9
    True
    >>> sorted(compute("fid", features, features + 1, bootstrap=10))
    ['fid', 'fid_ci_high', 'fid_ci_low']
    """
    spec = lookup(name)
    accepted = keyword_params(spec.fn)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise DsimError(
            f"metric {name!r} has no parameter(s) {', '.join(unknown)}; valid: {', '.join(accepted) or 'none'} "
            "(and bootstrap, bootstrap_seed, max_samples)"
        )
    bootstrap = positive_int(bootstrap, name="bootstrap", metric=name, minimum=0)
    if max_samples is not None:
        from dsim.metrics.sampling import sample_rows

        sides = []
        for role, side in (("reference", reference), ("candidate", candidate)):
            rows = sample_rows(len(side), max_samples, seed=params.get("seed") or 0, role=role, metric=name)
            sides.append(side if rows is None else side[rows])
        reference, candidate = sides
    values = as_metric_values(spec.fn(reference, candidate, **params))
    if bootstrap:
        values.update(
            bootstrap_intervals(
                spec.fn, reference, candidate, replicates=bootstrap, seed=bootstrap_seed, params=params,
                keys=[key for key in values if not key.endswith("_std")], paired=spec.kind == "paired",
            )
        )
    return values
