"""Feature-level metrics: two N×D feature sets in, :class:`MetricValues` (a ``dict[str, float]``) out.

Every metric is a plain function ``fn(reference, candidate, **params)`` on NumPy arrays or torch tensors,
registered in :data:`METRICS`; :func:`compute` runs one by name (and adds bootstrap intervals on request).
Adding a metric is one module plus one ``register(...)`` line below.

=========  =====================================  ===================================  ======  ==========
metric     values                                 params (defaults)                    input   direction
=========  =====================================  ===================================  ======  ==========
fid        fid                                    —                                    feat.   lower
kid_poly   kid_poly, kid_poly_std                 subsets=100, subset_size=1000,       feat.   lower
                                                  seed=0, degree=3, gamma=1/D, coef0=1,
                                                  kernel_dtype="float64"
kid_rbf    kid_rbf, kid_rbf_std                   subsets=100, subset_size=1000,       feat.   lower
                                                  seed=0, sigma=10, kernel_dtype="float64"
cmmd       cmmd                                   sigma=10, scale=1000                 feat.   lower
prdc       precision, recall, density, coverage   nearest_k=3                          feat.   higher
isc        isc, isc_std, isc_reference            splits=10, seed=0                    logits  higher
odist      odist                                  n_components=25                      feat.   lower
=========  =====================================  ===================================  ======  ==========

Parameter names mean the same thing everywhere: ``subsets`` / ``subset_size`` (random subsets for an
estimate averaged over subsets), ``seed`` (the metric's own randomness: subset draw, split shuffle),
``sigma`` (RBF bandwidth, in feature units), ``nearest_k`` (k of the k-th-nearest-neighbour radii),
``splits`` (consecutive splits for a per-split score), ``n_components`` (PCA components),
``kernel_dtype`` (the dtype kernel values are evaluated in; sums are float64 either way). Every metric
also takes ``device`` ("cpu", "cuda", …). A size parameter larger than the data allows is clipped with a
:class:`ClippedParameterWarning` (:class:`SubsetSizeWarning` for KID subsets); bad inputs (fewer than 2
rows, mismatched dimensions, NaN/inf, wrong shape) raise :class:`~dsim.errors.DsimError`.

``prdc`` counts a point inside a k-NN ball when its distance is strictly smaller (``<``) than the radius, as
the ``prdc`` package does (torch-fidelity's precision/recall use ``≤``; the two differ only on exact
ties). ``cmmd`` L2-normalises its inputs. ``isc`` scores the candidate set and reports the reference
set's score alongside.

``input`` is the extractor output the metric needs (:attr:`MetricSpec.input`): ``feat.`` the embedding,
``logits`` the class-logits layer.

Per-image scores (``values.per_image[side][column]``, one entry per input row of that side):

=========  ==========  ==========================================================================
metric     side        columns
=========  ==========  ==========================================================================
prdc       candidate   ``nearest_reference_distance``, ``realistic`` (1.0/0.0: the precision flag)
prdc       reference   ``covered`` (1.0/0.0: the coverage flag), ``knn_radius``
odist      candidate   ``i_dist``
=========  ==========  ==========================================================================

Uncertainty: ``compute(name, reference, candidate, bootstrap=N, bootstrap_seed=0, **params)`` adds
``<value>_ci_low`` / ``<value>_ci_high`` (95% percentile bootstrap interval) for every value except
``*_std``; KID also reports the std over its subsets.
"""

from dsim.metrics._checks import ClippedParameterWarning, MetricWarning, RankDeficientWarning, SubsetSizeWarning
from dsim.metrics._registry import METRICS, MetricSpec, available, compute, lookup, register
from dsim.metrics._values import MetricValues
from dsim.metrics.bootstrap import bootstrap_intervals
from dsim.metrics.clip_mmd import cmmd
from dsim.metrics.frechet import FeatureStats, fid, fid_from_feature_stats, fid_from_stats
from dsim.metrics.inception_score import isc
from dsim.metrics.kid import kid_poly, kid_rbf
from dsim.metrics.manifold import prdc
from dsim.metrics.pca_distance import odist

register("fid", fid, higher_is_better=False, from_stats=fid_from_feature_stats)
register("kid_poly", kid_poly, higher_is_better=False)
register("kid_rbf", kid_rbf, higher_is_better=False)
register("cmmd", cmmd, higher_is_better=False)
register("prdc", prdc, higher_is_better=True)
register("isc", isc, higher_is_better=True, input="logits")
register("odist", odist, higher_is_better=False)

__all__ = [
    "METRICS",
    "ClippedParameterWarning",
    "FeatureStats",
    "MetricSpec",
    "MetricValues",
    "MetricWarning",
    "RankDeficientWarning",
    "SubsetSizeWarning",
    "available",
    "bootstrap_intervals",
    "cmmd",
    "compute",
    "fid",
    "fid_from_feature_stats",
    "fid_from_stats",
    "isc",
    "kid_poly",
    "kid_rbf",
    "lookup",
    "odist",
    "prdc",
    "register",
]

from dsim.metrics import paired  # noqa: E402,F401  (registers the paired metrics: psnr, ms_ssim, lpips_*, dreamsim)
