"""Feature-level metrics: two N×D feature sets in, :class:`MetricValues` (a ``dict[str, float]``) out.

Every metric is a plain function ``fn(reference, candidate, **params)`` on NumPy arrays or torch tensors,
declared once in :data:`METRICS` by ``register(...)`` below (kind, direction, parameter meanings and
constraints, value roles); :func:`compute` runs one by name (and adds bootstrap intervals on request).
Adding a metric is one module, one ``register(...)`` call and its test; then
``python -m dsim.metrics.catalog --write`` renders its config, this list and the README's table.

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
"""

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
from dsim.metrics._registry import (
    COUNT,
    DETAIL,
    HEADLINE,
    METRICS,
    SPREAD,
    MetricSpec,
    available,
    check_params,
    compute,
    lookup,
    register,
)
from dsim.metrics._values import MetricValues
from dsim.metrics.authenticity import authpct
from dsim.metrics.bootstrap import bootstrap_intervals
from dsim.metrics.clip_mmd import cmmd
from dsim.metrics.diversity import vendi
from dsim.metrics.fd_infinity import fd_inf
from dsim.metrics.frechet import FeatureStats, fid, fid_from_feature_stats, fid_from_stats
from dsim.metrics.inception_score import isc
from dsim.metrics.kid import kid_poly, kid_rbf
from dsim.metrics.manifold import prdc
from dsim.metrics.path_length import ppl
from dsim.metrics.path_length import variant as ppl_variant
from dsim.metrics.pca_distance import odist

_SUBSETS = {
    "subsets": ("random subsets the estimate is averaged over", integer(1)),
    "subset_size": ("samples per subset from each set (clipped, with a warning, to the smaller set)", integer(2)),
    "seed": ("seed of the subset draw", integer(0)),
    "kernel_dtype": (
        "float32: kernel products at twice the speed on large sets; sums stay float64 (~1e-10 off)",
        choice("float64", "float32"),
    ),
}

register(
    "fid",
    fid,
    higher_is_better=False,
    from_stats=fid_from_feature_stats,
    ranges={"fid": (0.0, None)},
    doc="Frechet distance between Gaussian fits of the two feature sets",
)
register(
    "kid_poly",
    kid_poly,
    higher_is_better=False,
    sampled=True,
    doc="Kernel distance: unbiased MMD^2 with kernel (gamma x.y + coef0)^degree, mean and std over seeded subsets",
    values={"kid_poly": HEADLINE, "kid_poly_std": SPREAD},
    params={
        **_SUBSETS,
        "degree": ("polynomial degree", integer(1)),
        "gamma": ("kernel scale; null: 1/D", optional(positive())),
        "coef0": ("kernel offset", number()),
    },
)
register(
    "kid_rbf",
    kid_rbf,
    higher_is_better=False,
    sampled=True,
    doc="Kernel distance with a Gaussian kernel exp(-|x-y|^2 / (2 sigma^2)): unbiased MMD^2 over seeded subsets",
    values={"kid_rbf": HEADLINE, "kid_rbf_std": SPREAD},
    params={**_SUBSETS, "sigma": ("RBF bandwidth, in feature units", positive())},
)
register(
    "cmmd",
    cmmd,
    higher_is_better=False,
    sampled=True,
    doc="CMMD: MMD^2 (biased, full sets) with an RBF kernel on L2-normalised embeddings, x1000",
    notes=("Defined on CLIP embeddings (the paper uses clip_vit_l14_336); any extractor works.",),
    params={
        "sigma": ("RBF bandwidth on the unit sphere", positive()),
        "scale": ("factor on MMD^2 (the paper's 1000)", positive()),
    },
)
register(
    "prdc",
    prdc,
    higher_is_better=True,
    sampled=True,
    doc="Precision, recall, density, coverage (Naeem et al. 2020)",
    notes=(
        "k-NN radii exclude the point itself; a point is inside a ball when strictly closer (<).",
        "Per-image flags and distances are logged as artifacts.",
    ),
    values={"precision": HEADLINE, "recall": HEADLINE, "density": HEADLINE, "coverage": HEADLINE},
    ranges={"precision": (0.0, 1.0), "recall": (0.0, 1.0), "density": (0.0, None), "coverage": (0.0, 1.0)},
    per_image={"candidate": ("nearest_reference_distance", "realistic"), "reference": ("covered", "knn_radius")},
    params={"nearest_k": ("k of the k-th-nearest-neighbour radii", integer(1))},
)
register(
    "isc",
    isc,
    higher_is_better=True,
    input="logits",
    doc="Inception Score of the candidate set from the extractor's class logits",
    notes=("The extractor's logits layer is chosen automatically; isc_reference is the reference set's score.",),
    values={"isc": HEADLINE, "isc_std": SPREAD, "isc_reference": DETAIL},
    params={
        "splits": ("consecutive splits for the per-split score (clipped to the set size)", integer(1)),
        "seed": ("seed of the shuffle before splitting; null: no shuffle", optional(integer(0))),
    },
)
register(
    "odist",
    odist,
    higher_is_better=False,
    ranges={"odist": (0.0, None)},
    doc="O_dist: mean over candidates of I_dist, the summed distance to every reference image after a joint PCA",
    notes=("From the dataset-distance paper; per-image I_dist is logged as an artifact.",),
    per_image={"candidate": ("i_dist",)},
    params={"n_components": ("PCA components (clipped to what the union allows)", integer(1))},
)

register(
    "fd_inf",
    fd_inf,
    higher_is_better=False,
    doc="FD-infinity: FID extrapolated to infinitely many candidates (linear fit of FID against 1/N over "
    "seeded subsets; Chong & Forsyth 2020)",
    values={"fd_inf": HEADLINE, "fd_inf_slope": DETAIL, "fid": DETAIL, "fd_inf_points": COUNT},
    notes=("Subsets of the candidate without replacement, the full reference, as Chong & Forsyth.",),
    params={
        "num_points": ("subset sizes the line is fitted to", integer(2)),
        "min_fraction": ("the smallest subset, as a fraction of the candidate set", between(0, 1)),
        "seed": ("seed of the subset draws", integer(0)),
    },
)
register(
    "vendi",
    vendi,
    higher_is_better=True,
    doc="Vendi score: effective number of distinct samples of each set, cosine kernel (Friedman & Dieng 2023)",
    values={"vendi": HEADLINE, "vendi_reference": DETAIL, "vendi_ratio": DETAIL},
    notes=(
        "Kernel: cosine similarity (linear on L2-normalised features); vendi is the candidate's, "
        "vendi_ratio = candidate / reference.",
    ),
    params={"q": ("order of the score (1: exp of the Shannon entropy of the spectrum)", positive())},
)
register(
    "authpct",
    authpct,
    higher_is_better=True,
    ranges={"authpct": (0.0, 100.0)},
    doc="Authenticity: % of candidates farther from their nearest reference than it is from its own "
    "nearest reference (Alaa et al. 2022; dgm-eval's authpct)",
    per_image={"candidate": ("authentic", "nearest_reference_distance")},
)


def _lpips_vgg(params: dict):
    from dsim.metrics.paired.lpips import LpipsNetwork

    return LpipsNetwork("vgg", params.get("lpips_weights", "default"), option="metric.params.lpips_weights")


_PPL = {
    "space": ("z: the latents themselves; w: mapped by the model's mapping network, then lerped", choice("z", "w")),
    "sampling": ("end: t = 0 (the path's end); full: t ~ U(0, 1) along the path", choice("end", "full")),
    "epsilon": ("the step along the path; distances are divided by epsilon^2", positive()),
    "interpolation": ("z-space: slerp (StyleGAN's) | lerp (torch-fidelity's default)", choice("slerp", "lerp")),
    "crop": ("StyleGAN's centre (face) crop before LPIPS", boolean()),
    "resize": ("side before LPIPS (StyleGAN 256, torch-fidelity 64); null: as generated", optional(integer(8))),
    "n_samples": ("latent paths sampled; null: generator.n_samples (StyleGAN used 100000)", optional(integer(2))),
    "seed": ("seed of the latents and t (one stream per sample)", integer(0)),
    "batch_size": ("paths per forward pass", integer(1)),
    "lpips_weights": ("LPIPS-VGG trunk: default (hub cache) | PATH | random (plumbing tests only)", text()),
    "discard_lower": ("percentile below which paths are dropped; null: keep all", optional(between(0, 100))),
    "discard_upper": ("percentile above which paths are dropped; null: keep all", optional(between(0, 100))),
}


def _ppl_values(name: str) -> dict:
    return {name: HEADLINE, f"{name}_std": SPREAD, f"{name}_untrimmed": DETAIL, "n_kept": COUNT}


_PPL_NOTES = (
    "Needs a generator: generator=toy (or your own) and pair.candidate=generator; the reference is recorded, not used.",
    "Per-path t, path length and kept flag are logged as an artifact (per_image_candidate.csv).",
)
register(
    "ppl",
    ppl,
    higher_is_better=False,
    kind="generator",
    values=_ppl_values("ppl"),
    network=_lpips_vgg,
    ranges={"ppl": (0.0, None), "ppl_untrimmed": (0.0, None)},
    doc="Perceptual path length: LPIPS-VGG distance of two nearby points on a latent path / epsilon^2, "
    "trimmed mean (Karras et al. 2019)",
    notes=_PPL_NOTES,
    per_image={"candidate": ("t", "path_length", "kept")},
    params=_PPL,
)
# w-space paths are always straight lines (lerp), so the w variants fix interpolation too
_PPL_FIXED = {"z": {"space": "z"}, "w": {"space": "w", "interpolation": "lerp"}}
for _space in ("z", "w"):
    for _sampling in ("end", "full"):
        _name = f"ppl{_space}{_sampling}"
        register(
            _name,
            ppl_variant(_name),
            higher_is_better=False,
            kind="generator",
            values=_ppl_values(_name),
            network=_lpips_vgg,
            fixed=_PPL_FIXED[_space] | {"sampling": _sampling},
            ranges={_name: (0.0, None), f"{_name}_untrimmed": (0.0, None)},
            doc=f"PPL in {_space}-space, {_sampling} sampling (StyleGAN's ppl_{_space}{_sampling}); see ppl",
            notes=_PPL_NOTES,
            per_image={"candidate": ("t", "path_length", "kept")},
            params={k: v for k, v in _PPL.items() if k not in (*_PPL_FIXED[_space], "sampling")},
        )

__all__ = [
    "METRICS",
    "authpct",
    "fd_inf",
    "ClippedParameterWarning",
    "FeatureStats",
    "MetricSpec",
    "MetricValues",
    "MetricWarning",
    "RankDeficientWarning",
    "SubsetSizeWarning",
    "available",
    "bootstrap_intervals",
    "check_params",
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
    "ppl",
    "prdc",
    "register",
    "vendi",
]

from dsim.metrics import paired  # noqa: E402,F401  (registers the paired metrics: psnr, ms_ssim, lpips_*, dreamsim)
