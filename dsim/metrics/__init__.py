"""Feature-level metrics: two N×D feature sets in, :class:`MetricValues` (a ``dict[str, float]``) out.

Every metric is a plain function ``fn(reference, candidate, **params)`` on NumPy arrays or torch tensors,
declared once in :data:`METRICS` by ``register(...)`` below (kind, direction, parameter meanings and
constraints, value roles); :func:`compute` runs one by name (and adds bootstrap intervals on request).
Adding a metric is one module, one ``register(...)`` call and its test; then
``python -m dsim.metrics.catalog --write`` renders its config, this list and the table of docs/reference/metrics.md.

Every registered metric (rendered from the declarations by ``python -m dsim.metrics.catalog --write``;
roles: ``headline`` the table's number, ``spread`` its std, ``detail`` anything else, ``count`` a size):

.. metrics-list: rendered by `python -m dsim.metrics.catalog --write`
``authpct`` (distribution, on features, higher = closer): Authenticity: % of candidates farther from their nearest reference than it is from its own nearest reference (Alaa et al. 2022; dgm-eval's authpct).
    values: authpct (headline)
    params: —
    per image: candidate: authentic, nearest_reference_distance
``cmmd`` (distribution, on features, lower = closer): CMMD: MMD^2 (biased, full sets) with an RBF kernel on L2-normalised embeddings, x1000.
    values: cmmd (headline)
    params: sigma=10.0, scale=1000.0, max_samples=null
``dreamsim`` (paired, on features, lower = closer): DreamSim distance of each image pair (1 - cosine similarity of DreamSim embeddings).
    values: dreamsim (headline), dreamsim_median (detail), dreamsim_best (detail), dreamsim_worst (detail), n_pairs (count), match_distance_mean (detail)
    params: weights=default, batch_size=8
``emd`` (distribution, on features, lower = closer): Exact W2^2 (earth mover's distance, squared Euclidean cost, uniform weights) by POT's network simplex.
    values: emd (headline)
    params: max_samples=4096
    per image: candidate: transport_cost
``fd_inf`` (distribution, on features, lower = closer): FD-infinity: FID extrapolated to infinitely many candidates (linear fit of FID against 1/N over seeded subsets; Chong & Forsyth 2020).
    values: fd_inf (headline), fd_inf_slope (detail), fid (detail), fd_inf_points (count)
    params: num_points=15, min_fraction=0.1, seed=0
``fid`` (distribution, on features, lower = closer): Frechet distance between Gaussian fits of the two feature sets.
    values: fid (headline)
    params: —
``isc`` (distribution, on logits, higher = closer): Inception Score of the candidate set from the extractor's class logits.
    values: isc (headline), isc_std (spread), isc_reference (detail)
    params: splits=10, seed=0
``kid_poly`` (distribution, on features, lower = closer): Kernel distance: unbiased MMD^2 with kernel (gamma x.y + coef0)^degree, mean and std over seeded subsets.
    values: kid_poly (headline), kid_poly_std (spread)
    params: subsets=100, subset_size=1000, seed=0, degree=3, gamma=null, coef0=1.0, kernel_dtype=float64, max_samples=null
``kid_rbf`` (distribution, on features, lower = closer): Kernel distance with a Gaussian kernel exp(-|x-y|^2 / (2 sigma^2)): unbiased MMD^2 over seeded subsets.
    values: kid_rbf (headline), kid_rbf_std (spread)
    params: subsets=100, subset_size=1000, seed=0, sigma=10.0, kernel_dtype=float64, max_samples=null
``lpips_alex`` (paired, on images, lower = closer): LPIPS v0.1 (lpips package) with the alex trunk; 0 = identical.
    values: lpips_alex (headline), lpips_alex_median (detail), lpips_alex_best (detail), lpips_alex_worst (detail), n_pairs (count), match_distance_mean (detail)
    params: weights=default, batch_size=8
``lpips_squeeze`` (paired, on images, lower = closer): LPIPS v0.1 (lpips package) with the squeeze trunk; 0 = identical.
    values: lpips_squeeze (headline), lpips_squeeze_median (detail), lpips_squeeze_best (detail), lpips_squeeze_worst (detail), n_pairs (count), match_distance_mean (detail)
    params: weights=default, batch_size=8
``lpips_vgg`` (paired, on images, lower = closer): LPIPS v0.1 (lpips package) with the vgg trunk; 0 = identical.
    values: lpips_vgg (headline), lpips_vgg_median (detail), lpips_vgg_best (detail), lpips_vgg_worst (detail), n_pairs (count), match_distance_mean (detail)
    params: weights=default, batch_size=8
``ms_ssim`` (paired, on images, higher = closer): Multi-scale SSIM of each image pair (torchmetrics; Gaussian window, 5 scales); 1 = identical.
    values: ms_ssim (headline), ms_ssim_median (detail), ms_ssim_best (detail), ms_ssim_worst (detail), n_pairs (count), match_distance_mean (detail)
    params: kernel_size=11, sigma=1.5, betas=[0.0448, 0.2856, 0.3001, 0.2363, 0.1333], batch_size=8
``odist`` (distribution, on features, lower = closer): O_dist: mean over candidates of I_dist, the summed distance to every reference image after a joint PCA.
    values: odist (headline)
    params: n_components=25
    per image: candidate: i_dist
``otdd`` (distribution, on features, lower = closer): OTDD: label-aware exact OT with cost |x-x'|^2 + W2^2 of the labels' Gaussians (Alvarez-Melis & Fusi 2020).
    values: otdd (headline), otdd_label_cost (detail), reference_labels (count), candidate_labels (count)
    params: max_samples=4096, labels=null
    per image: candidate: transport_cost
``ppl`` (generator, on generator, lower = closer): Perceptual path length: LPIPS-VGG distance of two nearby points on a latent path / epsilon^2, trimmed mean (Karras et al. 2019).
    values: ppl (headline), ppl_std (spread), ppl_untrimmed (detail), n_kept (count)
    params: space=z, sampling=end, epsilon=0.0001, interpolation=slerp, crop=false, resize=256, n_samples=null, seed=0, batch_size=32, lpips_weights=default, discard_lower=1.0, discard_upper=99.0
    per image: candidate: t, path_length, kept
``pplwend`` (generator, on generator, lower = closer): PPL in w-space, end sampling (StyleGAN's ppl_wend); see ppl.
    values: pplwend (headline), pplwend_std (spread), pplwend_untrimmed (detail), n_kept (count)
    params: epsilon=0.0001, crop=false, resize=256, n_samples=null, seed=0, batch_size=32, lpips_weights=default, discard_lower=1.0, discard_upper=99.0
    per image: candidate: t, path_length, kept
``pplwfull`` (generator, on generator, lower = closer): PPL in w-space, full sampling (StyleGAN's ppl_wfull); see ppl.
    values: pplwfull (headline), pplwfull_std (spread), pplwfull_untrimmed (detail), n_kept (count)
    params: epsilon=0.0001, crop=false, resize=256, n_samples=null, seed=0, batch_size=32, lpips_weights=default, discard_lower=1.0, discard_upper=99.0
    per image: candidate: t, path_length, kept
``pplzend`` (generator, on generator, lower = closer): PPL in z-space, end sampling (StyleGAN's ppl_zend); see ppl.
    values: pplzend (headline), pplzend_std (spread), pplzend_untrimmed (detail), n_kept (count)
    params: epsilon=0.0001, interpolation=slerp, crop=false, resize=256, n_samples=null, seed=0, batch_size=32, lpips_weights=default, discard_lower=1.0, discard_upper=99.0
    per image: candidate: t, path_length, kept
``pplzfull`` (generator, on generator, lower = closer): PPL in z-space, full sampling (StyleGAN's ppl_zfull); see ppl.
    values: pplzfull (headline), pplzfull_std (spread), pplzfull_untrimmed (detail), n_kept (count)
    params: epsilon=0.0001, interpolation=slerp, crop=false, resize=256, n_samples=null, seed=0, batch_size=32, lpips_weights=default, discard_lower=1.0, discard_upper=99.0
    per image: candidate: t, path_length, kept
``prdc`` (distribution, on features, higher = closer): Precision, recall, density, coverage (Naeem et al. 2020).
    values: precision (headline), recall (headline), density (headline), coverage (headline)
    params: nearest_k=3, max_samples=null
    per image: candidate: nearest_reference_distance, realistic; reference: covered, knn_radius
``psnr`` (paired, on images, higher = closer): Peak signal-to-noise ratio of each image pair in dB on 8-bit RGB.
    values: psnr (headline), psnr_median (detail), psnr_best (detail), psnr_worst (detail), n_pairs (count), match_distance_mean (detail)
    params: data_range=255.0, max_db=100.0
``sinkhorn`` (distribution, on features, lower = closer): Debiased Sinkhorn divergence (squared Euclidean cost, entropic epsilon) by geomloss; 0 for identical sets.
    values: sinkhorn (headline), sinkhorn_epsilon (detail), sinkhorn_transport (detail)
    params: epsilon=null, blur=null, scaling=0.9, max_samples=4096
    per image: candidate: transport_cost
``sliced_wasserstein`` (distribution, on features, lower = closer): Sliced W2^2: mean 1-D W2^2 over seeded random projections (POT); every image, O(N) memory.
    values: sliced_wasserstein (headline), projections (count)
    params: projections=128, seed=0
    per image: candidate: transport_cost
``vendi`` (distribution, on features, higher = closer): Vendi score: effective number of distinct samples of each set, cosine kernel (Friedman & Dieng 2023).
    values: vendi (headline), vendi_reference (detail), vendi_ratio (detail)
    params: q=1.0
.. /metrics-list

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

``input`` is what the metric is computed on (:attr:`MetricSpec.input`): ``features`` the embedding,
``logits`` the class-logits layer, ``images`` decoded image pairs. Per-image scores
(``values.per_image[side][column]``) have one entry per input row of that side.

Uncertainty: ``compute(name, reference, candidate, bootstrap=N, bootstrap_seed=0, **params)`` adds
``<value>_ci_low`` / ``<value>_ci_high`` for every value except spreads and counts: a 95% interval for the
estimator's expectation at this sample size from N half-samples without replacement (no duplicated rows,
which bias FID, KID and PRDC), always containing the estimate (:mod:`dsim.metrics.bootstrap`); KID also
reports the std over its subsets.

Noise floor: ``compute(name, reference, candidate, floor=True)`` adds, for each headline value, the metric
between two seeded random halves of the reference (10 splits): ``<value>_floor`` (median),
``<value>_floor_ci_low`` / ``_floor_ci_high`` and ``<value>_over_floor`` = value / floor, so a distance reads
as "k times what sampling noise gives at this n in this space" (:mod:`dsim.metrics.floor`).
"""

from dsim.metrics._authpct import authpct
from dsim.metrics._checks import (
    ClippedParameterWarning,
    MetricWarning,
    RankDeficientWarning,
    SubsetSizeWarning,
    between,
    boolean,
    choice,
    integer,
    number,
    optional,
    positive,
    text,
)
from dsim.metrics._cmmd import cmmd
from dsim.metrics._fd_inf import fd_inf
from dsim.metrics._fid import FeatureStats, fid, fid_from_feature_stats, fid_from_stats
from dsim.metrics._isc import isc
from dsim.metrics._kid import kid_poly, kid_rbf
from dsim.metrics._odist import odist
from dsim.metrics._otdd import otdd
from dsim.metrics._ppl import ppl
from dsim.metrics._prdc import prdc
from dsim.metrics._registry import (
    COUNT,
    DETAIL,
    HEADLINE,
    METRICS,
    SPREAD,
    MetricSpec,
    available,
    check_floor,
    check_params,
    compute,
    declare,
    discover,
    floored_keys,
    lookup,
    register,
)
from dsim.metrics._transport import emd, sinkhorn, sliced_wasserstein
from dsim.metrics._values import MetricValues
from dsim.metrics._vendi import vendi
from dsim.metrics.bootstrap import bootstrap_intervals
from dsim.metrics.floor import noise_floor, streamed_floor

discover(__name__, __path__)  # every private module: a metric added as dsim/metrics/_NAME.py needs no edit here

__all__ = [
    "METRICS",
    "COUNT",
    "DETAIL",
    "HEADLINE",
    "SPREAD",
    "ClippedParameterWarning",
    "FeatureStats",
    "MetricSpec",
    "MetricValues",
    "MetricWarning",
    "RankDeficientWarning",
    "SubsetSizeWarning",
    "authpct",
    "available",
    "between",
    "boolean",
    "bootstrap_intervals",
    "check_floor",
    "check_params",
    "choice",
    "cmmd",
    "compute",
    "declare",
    "fd_inf",
    "fid",
    "floored_keys",
    "fid_from_feature_stats",
    "fid_from_stats",
    "integer",
    "isc",
    "kid_poly",
    "kid_rbf",
    "lookup",
    "noise_floor",
    "number",
    "odist",
    "otdd",
    "emd",
    "sinkhorn",
    "sliced_wasserstein",
    "streamed_floor",
    "optional",
    "positive",
    "ppl",
    "prdc",
    "register",
    "text",
    "vendi",
]

from dsim.metrics import paired  # noqa: E402,F401  (registers the paired metrics: psnr, ms_ssim, lpips_*, dreamsim)
