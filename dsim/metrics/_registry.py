"""The metric registry: one declaration (:class:`MetricSpec`) per name, and :func:`compute` to run one by name.

A declaration says everything about a metric once: its function, kind, direction, the extractor output it
needs, its parameters (read from the function's keyword-only signature, with a meaning and a
:class:`~dsim.metrics._checks.Constraint` each), and its value keys with their roles. The configs
(``conf/metric/*.yaml``), the ``dsim.metrics`` docstring table and the metric table of
``docs/reference/metrics.md`` are rendered from it (:mod:`dsim.metrics.catalog`); the cell checks
parameters with it, and results tables pick headline values by role instead of guessing from key suffixes.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from dsim.errors import DsimError
from dsim.metrics._checks import Constraint, integer, optional
from dsim.metrics._values import MetricValues, as_metric_values
from dsim.metrics.bootstrap import ROW_PARAMS, bootstrap_intervals, rows_of
from dsim.metrics.floor import COUNTS as FLOOR_COUNTS
from dsim.metrics.floor import REPEATS, floor_keys, noise_floor

INPUTS = ("features", "logits", "images", "generator")
KINDS = ("distribution", "paired", "generator")

#: value roles: the number(s) a table shows, their spread, an interval bound, anything else, a count, and a
#: noise-floor value (:mod:`dsim.metrics.floor`: ``<headline>_floor``, its bounds, ``<headline>_over_floor``)
HEADLINE, SPREAD, INTERVAL, DETAIL, COUNT, FLOOR = "headline", "spread", "interval", "detail", "count", "floor"
ROLES = (HEADLINE, SPREAD, INTERVAL, DETAIL, COUNT, FLOOR)

#: parameters every metric call takes besides its own (not part of a declaration's ``params``)
RUNTIME_PARAMS = ("device", "progress", *ROW_PARAMS)

BOOTSTRAP_DOC = "N > 0: 95% interval for every value (<name>_ci_low/_ci_high) from N seeded half-samples"
FLOOR_DOC = "true: noise floor, <name> between 2 seeded halves of the reference x10, and <name>_over_floor"


@dataclass(frozen=True)
class Param:
    """One keyword parameter of a metric: its default (from the signature), meaning and accepted values."""

    name: str
    default: object
    doc: str = ""
    constraint: Constraint | None = None

    def check(self, value, metric: str):
        return value if self.constraint is None else self.constraint(value, name=self.name, metric=metric)


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric: ``fn(reference, candidate, **params) -> MetricValues``.

    ``input`` names what the metric is computed on: ``"features"`` (the embedding), ``"logits"`` (the
    class-logits layer, for the Inception Score) or ``"images"`` (paired metrics). ``values`` maps each
    value key to its role (:data:`ROLES`); ``per_image`` maps a side to the per-image columns the metric
    returns. A paired metric also has ``pair_values`` (pairs → one number each), ``network`` (params → the
    network its numbers depend on, recorded as the cell's extractor), ``embedding`` (an extractor name when
    it is a distance between that extractor's embeddings) and ``aligned`` (a pair's images must share a size).
    A ``kind="generator"`` metric (PPL) takes the generator itself: ``fn(generator, **params)``. ``fixed``
    holds parameters a named variant sets for good (``pplwend``: ``space=w, sampling=end``), which its
    users cannot override.
    """

    name: str
    fn: Callable[..., MetricValues]
    higher_is_better: bool
    kind: str = "distribution"
    doc: str = ""
    input: str = "features"
    #: the same metric from streamed :class:`~dsim.metrics._fid.FeatureStats` of each side (bounded memory)
    from_stats: Callable[..., MetricValues] | None = None
    values: Mapping[str, str] = field(default_factory=dict)
    per_image: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    params: tuple[Param, ...] = ()
    notes: tuple[str, ...] = ()
    #: parameters a grid cell uses besides the function's (``max_samples``, a paired metric's network options)
    cell_params: tuple[Param, ...] = ()
    pair_values: Callable | None = None
    network: Callable[[dict], object] | None = None
    embedding: str | None = None
    aligned: bool = True
    fixed: Mapping[str, object] = field(default_factory=dict)
    #: value key → (lowest, highest) its expectation can take (None: unbounded); intervals are clipped to it
    ranges: Mapping[str, tuple] = field(default_factory=dict)
    #: whether the headline compares the two sets (False: a score of the candidate alone, such as the Inception
    #: Score, which has no noise floor between two halves of the reference)
    comparative: bool = True

    @property
    def module(self) -> str:
        return getattr(self.fn, "func", self.fn).__module__  # a variant's fn is a partial

    def defaults(self) -> dict:
        """``{parameter: default}`` of the function's parameters, then the cell's."""
        return {p.name: p.default for p in (*self.params, *self.cell_params)}

    def role(self, key: str) -> str:
        """The role of a value key of this metric (interval bounds of a declared key are ``interval``)."""
        if key in self.values:
            return self.values[key]
        for suffix in ("_ci_low", "_ci_high"):
            if key.endswith(suffix) and key.removesuffix(suffix) in self.values:
                return INTERVAL
        if key in FLOOR_COUNTS or any(key in floor_keys(name) for name in self.headline()):
            return FLOOR
        return DETAIL

    def headline(self) -> list[str]:
        return [key for key, role in self.values.items() if role == HEADLINE]


METRICS: dict[str, MetricSpec] = {}


#: the kNN and kernel metrics' cell parameter (``register(..., sampled=True)``)
MAX_SAMPLES = Param(
    "max_samples",
    None,
    "N: a seeded sample of N rows of a larger side (for sets of 10^5-10^6 images)",
    optional(integer(2)),
)


def paired_values(name: str) -> dict[str, str]:
    """The value keys of every paired metric: mean (headline), median, best and worst pair, pair count."""
    return {
        name: HEADLINE,
        f"{name}_median": DETAIL,
        f"{name}_best": DETAIL,
        f"{name}_worst": DETAIL,
        "n_pairs": COUNT,
        "match_distance_mean": DETAIL,
    }


def register(
    name: str,
    fn: Callable,
    *,
    higher_is_better: bool,
    kind: str = "distribution",
    doc: str = "",
    input: str | None = None,
    from_stats: Callable | None = None,
    values: Mapping[str, str] | None = None,
    per_image: Mapping[str, tuple[str, ...]] | None = None,
    params: Mapping[str, tuple[str, Constraint | None]] | None = None,
    notes: tuple[str, ...] = (),
    sampled: bool = False,
    cell_params: Mapping[str, tuple[object, str, Constraint | None]] | None = None,
    pair_values: Callable | None = None,
    network: Callable | None = None,
    embedding: str | None = None,
    aligned: bool = True,
    fixed: Mapping[str, object] | None = None,
    ranges: Mapping[str, tuple] | None = None,
    comparative: bool = True,
) -> MetricSpec:
    """Declare ``fn`` as metric ``name`` in :data:`METRICS`.

    ``params`` gives each keyword-only parameter of ``fn`` its meaning and constraint
    (``{"subsets": ("random subsets averaged over", integer(1))}``); the defaults come from the signature,
    and a name that is not in it is an error (the declaration cannot drift from the function). ``values``
    defaults to ``{name: "headline"}`` (paired metrics: :func:`paired_values`); ``doc`` to the docstring's
    first line. ``sampled`` adds the cell parameter ``max_samples``; ``cell_params`` declares others
    (``{name: (default, meaning, constraint)}``) that a cell uses and the function does not take.
    ``fixed`` binds parameters for good (a named variant of another metric): they leave ``params``.
    """
    if name in METRICS:
        raise ValueError(f"metric {name!r} is already registered")
    if kind not in KINDS:
        raise ValueError(f"metric {name!r}: kind must be one of {KINDS}, got {kind!r}")
    input = input or {"paired": "images", "generator": "generator"}.get(kind, "features")
    if input not in INPUTS:
        raise ValueError(f"metric {name!r}: input must be one of {INPUTS}, got {input!r}")
    values = dict(values or (paired_values(name) if kind == "paired" else {name: HEADLINE}))
    bad_roles = sorted(set(values.values()) - set(ROLES))
    if bad_roles:
        raise ValueError(f"metric {name!r}: unknown value role(s) {bad_roles}; roles: {ROLES}")
    declared = dict(params or {})
    fixed = dict(fixed or {})
    signature = keyword_defaults(fn)
    unknown = sorted((set(declared) | set(fixed)) - set(signature))
    if unknown:
        raise ValueError(
            f"metric {name!r}: declared parameter(s) {unknown} are not keyword-only parameters of {fn.__qualname__}"
        )
    spec_params = tuple(
        Param(p, default, *declared.get(p, ("", None))) for p, default in signature.items() if p not in fixed
    )
    if fixed:
        fn = functools.partial(fn, **fixed)
    extra = ((MAX_SAMPLES,) if sampled else ()) + tuple(
        Param(p, default, meaning, constraint) for p, (default, meaning, constraint) in (cell_params or {}).items()
    )
    doc = doc or (inspect.getdoc(fn) or "").split("\n", 1)[0]
    METRICS[name] = spec = MetricSpec(
        name,
        fn,
        higher_is_better,
        kind,
        doc,
        input,
        from_stats,
        values,
        dict(per_image or {}),
        spec_params,
        tuple(notes),
        extra,
        pair_values,
        network,
        embedding,
        aligned,
        fixed,
        dict(ranges or {}),
        comparative,
    )
    return spec


def declare(name: str, **declaration) -> Callable[[Callable], Callable]:
    """Decorator: the function below is metric ``name`` (``declaration``: :func:`register`'s keywords), and
    calling it checks its declared parameters first (:func:`check_params`), so its body keeps no copy of the
    checks. The registry holds the undecorated function (:func:`compute` checks once, then calls it).

    >>> @declare("toy_gap", higher_is_better=False, params={"scale": ("factor", integer(1))})
    ... def toy_gap(reference, candidate, *, scale=1):
    ...     return {"toy_gap": scale * abs(float(reference.mean()) - float(candidate.mean()))}
    >>> import numpy as np
    >>> toy_gap(np.zeros((4, 2)), np.ones((4, 2)), scale=2)
    {'toy_gap': 2.0}
    >>> toy_gap(np.zeros((4, 2)), np.ones((4, 2)), scale=0)
    Traceback (most recent call last):
    dsim.errors.DsimError: toy_gap: scale must be an integer >= 1, got 0
    >>> _ = METRICS.pop("toy_gap")
    """

    def wrap(fn: Callable) -> Callable:
        spec = register(name, fn, **declaration)

        @functools.wraps(fn)
        def checked(*args, **params):
            return fn(*args, **check_params(spec, params, cell=False))

        return checked

    return wrap


def discover(package: str, path) -> None:
    """Import every private module of ``package`` (``path``: its ``__path__``): metric modules declare their
    metrics when imported, so a new ``_NAME.py`` is found without an edit of the package's ``__init__``."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(path):
        if info.name.startswith("_") and not info.ispkg:
            importlib.import_module(f"{package}.{info.name}")


def keyword_defaults(fn: Callable) -> dict:
    """``{name: default}`` of ``fn``'s keyword-only parameters, less the runtime ones (``device``)."""
    return {
        p.name: (None if p.default is inspect.Parameter.empty else p.default)
        for p in inspect.signature(fn).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in RUNTIME_PARAMS
    }


def keyword_params(fn: Callable) -> list[str]:
    """All keyword-only parameters of a metric function (``device`` included when it takes one)."""
    return [p.name for p in inspect.signature(fn).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]


def check_params(spec: MetricSpec, params: Mapping, *, cell: bool = True, also: tuple[str, ...] = ()) -> dict:
    """``params`` checked against ``spec``'s declaration (with its cell parameters unless ``cell=False``):
    unknown names and bad values raise :class:`~dsim.errors.DsimError` (one line); values come back
    converted (a YAML list → tuple, …). ``also``: further names the caller takes (shown as valid)."""
    by_name = {p.name: p for p in (*spec.params, *(spec.cell_params if cell else ()))}
    unknown = sorted(set(params) - set(by_name) - set(RUNTIME_PARAMS))
    if unknown:
        runtime = [] if cell else [p for p in RUNTIME_PARAMS if p in keyword_params(spec.fn)]  # a cell sets device
        valid = ", ".join([*by_name, *runtime, *also]) or "none (it takes no parameters)"
        fixed = [f"{k}={v}" for k, v in spec.fixed.items() if k in unknown]
        why = f" ({spec.name} fixes {', '.join(fixed)})" if fixed else ""
        raise DsimError(f"metric {spec.name!r} has no parameter(s) {', '.join(unknown)}{why}; valid: {valid}")
    return {key: by_name[key].check(value, spec.name) if key in by_name else value for key, value in params.items()}


def lookup(name: str, declared: dict | None = None) -> MetricSpec:
    """The metric registered as ``name`` — or a project's own: declared by a config with ``_target_`` (a
    function, with ``higher_is_better`` and optionally ``input``), or by an installed package's
    ``dsim.metrics`` entry point (a module that registers it, or the function itself)."""
    spec = METRICS.get(name)
    if spec is not None:
        return spec
    from dsim.util.plugins import entry_point, locate

    if declared and declared.get("_target_"):
        return register(
            name,
            locate(declared["_target_"]),
            higher_is_better=bool(declared.get("higher_is_better", False)),
            input=declared.get("input", "features"),
        )
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
    name: str,
    reference,
    candidate,
    *,
    bootstrap: int = 0,
    bootstrap_seed: int = 0,
    max_samples: int | None = None,
    floor: bool = False,
    floor_repeats: int = REPEATS,
    floor_counterparts=None,
    **params,
) -> MetricValues:
    """Run the metric registered as ``name`` on two N×D feature sets (or logits, or image pairs: see
    ``MetricSpec.input``).

    With ``bootstrap=N > 0``, N seeded half-samples of both sets (without replacement, seeded by
    ``bootstrap_seed``; a ``kind="paired"`` metric's pairs are drawn together) give every scalar value
    except spreads and counts ``<value>_ci_low`` / ``<value>_ci_high``: a 95% interval for the estimator's
    expectation at this sample size, which always contains the estimate (see :mod:`dsim.metrics.bootstrap`).
    With ``floor=True``, each headline value gets its noise floor: the metric between two seeded random
    samples of ``reference``, ``floor_repeats`` times — ``<value>_floor`` (median), ``<value>_floor_ci_low`` /
    ``_floor_ci_high`` — and the value at the floor's sizes over it, ``<value>_over_floor`` (see
    :mod:`dsim.metrics.floor`); ``floor_counterparts`` says which candidate rows are copies of which reference
    rows (``candidate is reference``: every row its own).
    Per-image scores, when the metric has them, are in the result's ``per_image``.

    >>> import numpy as np
    >>> from dsim.metrics import compute
    >>> features = np.random.default_rng(0).normal(size=(100, 4))
    >>> compute("fid", features, features)["fid"] < 1e-9
    True
    >>> sorted(compute("fid", features, features + 1, bootstrap=10))
    ['fid', 'fid_ci_high', 'fid_ci_low']
    >>> compute("fid", features, features + 1, floor=True)["fid_over_floor"] > 10
    True
    """
    spec = lookup(name)
    if spec.kind == "generator":
        raise DsimError(
            f"{name} evaluates a generator, not two feature sets: call dsim.metrics.ppl(generator, ...) "
            "or run it in a cell with pair.candidate=generator"
        )
    params = check_params(
        spec,
        params,
        cell=False,
        also=("bootstrap", "bootstrap_seed", "max_samples", "floor", "floor_repeats", "floor_counterparts"),
    )
    bootstrap = integer(0)(bootstrap, name="bootstrap", metric=name)
    if floor:
        check_floor(spec)
    if max_samples is not None:
        from dsim.metrics.sampling import sample_rows

        sides, kept = [], {}
        for role, side in (("reference", reference), ("candidate", candidate)):
            kept[role] = rows = sample_rows(
                len(side), max_samples, seed=params.get("seed") or 0, role=role, metric=name
            )
            sides.append(side if rows is None else side[rows])
        if floor and candidate is reference and floor_counterparts is None:
            floor_counterparts = np.arange(len(reference))  # every row its own copy, before sampling
        reference, candidate = sides
        params = rows_of(params, kept)
        if floor and floor_counterparts is not None:  # the copies' row numbers in the samples
            floor_counterparts = sampled_counterparts(floor_counterparts, kept["reference"], kept["candidate"])
    values = as_metric_values(spec.fn(reference, candidate, **params))
    if bootstrap:
        values.update(
            bootstrap_intervals(
                spec.fn,
                reference,
                candidate,
                replicates=bootstrap,
                seed=bootstrap_seed,
                params=params,
                keys=interval_keys_of(spec, values),
                paired=spec.kind == "paired",
                estimate=values,
                ranges=spec.ranges,
            )
        )
    if floor:
        floor_repeats = integer(2)(floor_repeats, name="floor_repeats", metric=name)
        if floor_counterparts is None and candidate is reference:
            floor_counterparts = np.arange(len(reference))
        values.update(
            noise_floor(
                spec.fn,
                reference,
                candidate,
                values,
                keys=floored_keys(spec),
                repeats=floor_repeats,
                seed=bootstrap_seed,
                params=params,
                counterparts=floor_counterparts,
            )
        )
    return values


def sampled_counterparts(counterparts, reference_rows, candidate_rows) -> np.ndarray:
    """``counterparts`` (candidate row → reference row, -1: none) of the sampled rows of each side (None: all)."""
    counterparts = np.asarray(counterparts)
    if candidate_rows is not None:
        counterparts = counterparts[candidate_rows]
    if reference_rows is None:
        return counterparts
    new = np.full(int(max(counterparts.max(initial=-1), max(reference_rows, default=-1))) + 1, -1)
    new[np.asarray(reference_rows)] = np.arange(len(reference_rows))
    return np.where(counterparts >= 0, new[np.clip(counterparts, 0, None)], -1)


def check_floor(spec: MetricSpec) -> None:
    """Refuse a noise floor where there is none to take: a paired or generator metric, a one-set score."""
    if spec.kind != "distribution":
        raise DsimError(
            f"metric.floor: {spec.name} is a {spec.kind} metric; a noise floor compares two halves of one image set, "
            "which only distribution metrics (fid, kid_poly, cmmd, prdc, odist, ...) do: set metric.floor=false"
        )
    if not spec.comparative:
        raise DsimError(
            f"metric.floor: {spec.name} scores the candidate set alone (not a distance between the two sets), so "
            "it has no noise floor: set metric.floor=false"
        )


def floored_keys(spec: MetricSpec) -> list[str]:
    """The values that get a noise floor: the metric's headline values."""
    return spec.headline()


def interval_keys_of(spec: MetricSpec, values: Mapping) -> list[str]:
    """The keys of ``values`` that get a bootstrap interval: every value except spreads and counts."""
    return [key for key in values if spec.role(key) not in (SPREAD, COUNT) and not key.endswith("_std")]


def pair_summary(spec: MetricSpec, values, *, bootstrap: int = 0, bootstrap_seed: int = 0) -> MetricValues:
    """A paired metric's values from its per-pair numbers — mean, median, best, worst, ``n_pairs`` — with
    intervals from half-samples of the pairs when ``bootstrap=N > 0`` (as :func:`compute`'s for a
    paired metric)."""
    import numpy as np

    def summary(a, _b) -> MetricValues:
        a = np.asarray(a, dtype=np.float64)
        best, worst = (np.max, np.min) if spec.higher_is_better else (np.min, np.max)
        return MetricValues(
            {
                spec.name: float(a.mean()),
                f"{spec.name}_median": float(np.median(a)),
                f"{spec.name}_best": float(best(a)),
                f"{spec.name}_worst": float(worst(a)),
                "n_pairs": float(len(a)),
            },
            per_image={"candidate": {spec.name: a}},
        )

    values = np.asarray(values, dtype=np.float64)
    out = summary(values, None)
    bootstrap = integer(0)(bootstrap, name="bootstrap", metric=spec.name)
    if bootstrap:
        out.update(
            bootstrap_intervals(
                summary,
                values,
                values,
                replicates=bootstrap,
                seed=bootstrap_seed,
                keys=interval_keys_of(spec, out),
                paired=True,
                estimate=out,
                ranges=spec.ranges,
            )
        )
    return out
