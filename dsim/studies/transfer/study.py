"""The dataset-distance paper's transfer study on real photos: F-score vs I_dist, then adding chosen images.

1. A segmenter (:mod:`.segmenter`) is trained on P and scores every image of S by its F-score.
2. dsim gives every S image its I_dist from P (the features of ``--extractor``, through dsim's cache) and
   the statistics of F against I_dist (:func:`dsim.analysis.transfer.statistics`: ρ, slope, intervals);
   the far domains' O_dist from P shows the ordering a pretrained extractor should find.
3. For each strategy of ``dsim select`` (:func:`dsim.analysis.selection.pick_order`: band, kcenter, random)
   and seed, q = 1, 3, 7 images of S are added to P's and the segmenter is trained again, the q images
   weighted together as much as P (``--target-weight``: a fine-tune on a balanced mix); its F on the rest
   of S (mean with a 95 % half-sample interval) and the new slope of F against I_dist are recorded.

Run as ``dsim -m experiment=transfer_study`` (``task=transfer_study``: :mod:`dsim.cli.study_task`). Writes
``baseline.csv`` (S's images: image, I_dist, scaled, F), ``domains.csv``, ``adapted.csv`` (a row per
strategy × seed × q), ``summary.csv`` (per strategy × q over seeds, and the difference from random at the
same q, seed by seed), ``study.json`` and ``study.png``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dsim.configs import EmbedSettings
from dsim.errors import DsimError
from dsim.records import STUDY_FILE, write_json
from dsim.studies.transfer import segmenter as sg


@dataclass
class StudyConfig:
    train: Path
    train_masks: Path
    pool: Path
    pool_masks: Path
    far: list[Path] = field(default_factory=list)
    extractor: object = "efficientnet_lite0"  # a name or an extractor (dsim.embed's)
    q: tuple[int, ...] = (1, 3, 7)
    strategies: tuple[str, ...] = ("band", "kcenter", "random")
    seeds: tuple[int, ...] = (0, 1, 2)
    band: tuple[float, float] = (0.6, 1.0)
    target_weight: float = 1.0  # the added images' total weight, as a share of P's
    bootstrap: int = 1000
    settings: EmbedSettings = field(default_factory=EmbedSettings)
    limit: int | None = None  # first N images of each set (a quick run)


def labelled(images: Path, masks: Path, limit: int | None) -> tuple[list[str], list[sg.Example]]:
    """The images of ``images`` that have a mask of the same stem in ``masks`` (relative paths, examples)."""
    from dsim.data.images import list_images

    found = {p.stem: p for p in Path(masks).rglob("*") if p.is_file()}
    pairs = [(ref.relpath, ref.path) for ref in list_images(images) if Path(ref.relpath).stem in found]
    if not pairs:
        raise DsimError(f"no image of {images} has a mask of the same stem in {masks}: give the masks' folder")
    pairs = pairs[:limit]
    return [r for r, _ in pairs], [sg.Example.load(p, found[Path(r).stem]) for r, p in pairs]


def mean_interval(values: np.ndarray, *, replicates: int, seed: int) -> tuple[float, float]:
    """The mean's 95 % interval by dsim's half-sample method (:mod:`dsim.metrics.bootstrap`); none (NaN) for 0
    replicates."""
    from dsim.metrics.bootstrap import bootstrap_intervals

    def mean(x, _):
        return {"mean": float(np.mean(x))}

    if replicates == 0:
        return float("nan"), float("nan")
    values = np.asarray(values, dtype=np.float64)
    ci = bootstrap_intervals(mean, values[:, None], values[:, None], replicates=replicates, seed=seed, paired=True)
    return ci["mean_ci_low"], ci["mean_ci_high"]


def run(config: StudyConfig, out: Path, *, progress: bool = True) -> dict:
    import dsim
    from dsim.analysis.selection import min_max_scaled, pick_order, pool_distances
    from dsim.analysis.transfer import statistics

    out.mkdir(parents=True, exist_ok=True)
    train_ids, train_examples = labelled(config.train, config.train_masks, config.limit)
    pool_ids, pool_examples = labelled(config.pool, config.pool_masks, config.limit)
    if max(config.q) > len(pool_examples) - 2:
        raise DsimError(
            f"task.q: adding {max(config.q)} of the pool's {len(pool_examples)} labelled images leaves too few to "
            "score the adapted model on: give smaller counts or more labelled pool images"
        )

    def embed(folder):
        return dsim.embed(folder, config.extractor, settings=config.settings)

    train_emb = _labelled_rows(embed(config.train), train_ids)
    pool_emb = _labelled_rows(embed(config.pool), pool_ids)

    i_dist = pool_distances(train_emb, pool_emb)
    scaled = min_max_scaled(i_dist)
    baseline = sg.train(train_examples, seed=0)
    f_pool = np.array([sg.f_score(baseline.predict(e.features), e.mask) for e in pool_examples])
    f_train = float(np.mean([sg.f_score(baseline.predict(e.features), e.mask) for e in train_examples]))
    pd.DataFrame({"image": pool_ids, "i_dist": i_dist, "scaled": scaled, "f_score": f_pool}).to_csv(
        out / "baseline.csv", index=False
    )
    base_stats = statistics(i_dist, f_pool, scaled=scaled, bootstrap=config.bootstrap, permutations=999).values
    domains = [_domain(config.pool.name, train_emb, pool_emb)]
    for far in config.far:
        domains.append(_domain(Path(far).name, train_emb, embed(far)))
    pd.DataFrame(domains).to_csv(out / "domains.csv", index=False)

    rows = []
    for strategy in config.strategies:
        for seed in config.seeds:
            order = pick_order(strategy, train_emb, pool_emb, scaled, count=max(config.q), band=config.band, seed=seed)
            for q in config.q:
                picks = [int(r) for r in order[:q]]
                rest = np.setdiff1d(np.arange(len(pool_examples)), picks)
                weight = config.target_weight * len(train_examples) / q
                model = sg.train(
                    train_examples + [pool_examples[r] for r in picks],
                    weights=[1.0] * len(train_examples) + [weight] * q,
                    seed=seed,
                )
                f_rest = np.array(
                    [sg.f_score(model.predict(pool_examples[r].features), pool_examples[r].mask) for r in rest]
                )
                low, high = mean_interval(f_rest, replicates=config.bootstrap, seed=seed)
                stats = statistics(i_dist[rest], f_rest, bootstrap=config.bootstrap, permutations=999, seed=seed)
                rows.append(
                    {
                        "strategy": strategy,
                        "seed": seed,
                        "q": q,
                        "picked": " ".join(pool_ids[r] for r in picks),
                        "picked_scaled_mean": float(scaled[picks].mean()),
                        "n_rest": len(rest),
                        "baseline_f_rest": float(f_pool[rest].mean()),
                        "f_rest": float(f_rest.mean()),
                        "gain": float(f_rest.mean() - f_pool[rest].mean()),
                        "f_rest_ci_low": low,
                        "f_rest_ci_high": high,
                        "threshold": model.threshold,
                        **{
                            k: stats.values[k]
                            for k in (
                                "spearman",
                                "spearman_ci_low",
                                "spearman_ci_high",
                                "slope",
                                "slope_ci_low",
                                "slope_ci_high",
                            )
                        },
                    }
                )
                if progress:
                    print(
                        f"{strategy:8s} seed {seed} q {q}: F on the rest {f_rest.mean():.3f} "
                        f"[{low:.3f}, {high:.3f}] (P only: {f_pool[rest].mean():.3f}), "
                        f"slope {stats.values['slope']:.3f}",
                        flush=True,
                    )
    adapted = pd.DataFrame(rows)
    adapted.to_csv(out / "adapted.csv", index=False)
    summary = summarise(adapted)
    summary.to_csv(out / "summary.csv", index=False)
    result = {
        "train": {
            "path": str(config.train),
            "n": len(train_examples),
            "fingerprint": train_emb.fingerprint,
            "f_score_mean": f_train,
            "threshold": baseline.threshold,
        },
        "pool": {
            "path": str(config.pool),
            "n": len(pool_examples),
            "fingerprint": pool_emb.fingerprint,
            "f_score_mean": float(f_pool.mean()),
        },
        "extractor": train_emb.extractor,
        "extractor_identity": train_emb.extractor_identity,
        "f_vs_i_dist": {k: float(v) for k, v in base_stats.items()},
        "domains": domains,
        "target_weight": config.target_weight,
        "summary": summary.to_dict(orient="records"),
    }
    plot(out / "study.png", pd.read_csv(out / "baseline.csv"), summary, base_stats)
    write_json(out / STUDY_FILE, result)  # last: the folder is complete
    return result


def _labelled_rows(embeddings, ids: list[str]):
    """The rows of ``embeddings`` for the labelled images ``ids``, in their order (every one must be embedded)."""
    row = {image: i for i, image in enumerate(embeddings.ids)}
    missing = [image for image in ids if image not in row]
    if missing:
        raise DsimError(
            f"{len(missing)} labelled images of {embeddings.root} could not be embedded (first: {missing[0]}): "
            "remove them or their masks"
        )
    return embeddings.subset([row[image] for image in ids])


def _domain(name: str, train, other) -> dict:
    import warnings

    import dsim.metrics as metrics

    with warnings.catch_warnings():  # a few hundred images in 1280-d: FID's covariances are rank-deficient
        warnings.simplefilter("ignore", metrics.RankDeficientWarning)
        fid = metrics.fid(train.features, other.features)["fid"]
    return {
        "domain": name,
        "path": str(other.root),
        "fingerprint": other.fingerprint,
        "n": len(other),
        "odist": metrics.odist(train.features, other.features)["odist"],
        "fid": fid,
    }


def summarise(adapted: pd.DataFrame) -> pd.DataFrame:
    """Per strategy × q over the seeds: the mean F on the rest of S, its gain over the P-only model on the same
    images (mean, min, max over seeds: the rest differs with the picks, the gain does not favour removing hard
    images), the mean slope, and the gain's difference from ``random`` at the same q and seed (mean, and in
    how many seeds it is above 0)."""
    rows = []
    random = adapted[adapted["strategy"] == "random"].set_index(["seed", "q"])["gain"]
    for (strategy, q), group in adapted.groupby(["strategy", "q"], sort=False):
        row = {
            "strategy": strategy,
            "q": q,
            "seeds": len(group),
            "f_rest_mean": group["f_rest"].mean(),
            "baseline_f_rest": group["baseline_f_rest"].mean(),
            "gain_mean": group["gain"].mean(),
            "gain_min": group["gain"].min(),
            "gain_max": group["gain"].max(),
            "slope_mean": group["slope"].mean(),
        }
        if strategy != "random" and len(random):
            gap = group.set_index(["seed", "q"])["gain"] - random.reindex(group.set_index(["seed", "q"]).index)
            row.update(vs_random_mean=float(gap.mean()), vs_random_seeds_above=int((gap > 0).sum()))
        rows.append(row)
    return pd.DataFrame(rows)


def plot(path: Path, baseline: pd.DataFrame, summary: pd.DataFrame, stats: dict) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), dpi=100, layout="constrained")
    left, right = fig.subplots(1, 2)
    left.scatter(baseline["scaled"], baseline["f_score"], s=12, alpha=0.7)
    fit = np.polyfit(baseline["scaled"], baseline["f_score"], 1)
    xs = np.linspace(0, 1, 20)
    left.plot(
        xs,
        np.polyval(fit, xs),
        color="tab:red",
        label=f"ρ = {stats['spearman']:.2f} [{stats['spearman_ci_low']:.2f}, {stats['spearman_ci_high']:.2f}]",
    )
    left.set(xlabel="scaled I_dist from P", ylabel="F-score (trained on P)", title="S before adaptation")
    left.legend(fontsize=8)
    for strategy, group in summary.groupby("strategy", sort=False):
        right.errorbar(
            group["q"],
            group["gain_mean"],
            yerr=[group["gain_mean"] - group["gain_min"], group["gain_max"] - group["gain_mean"]],
            marker="o",
            capsize=3,
            label=strategy,
        )
    right.axhline(0, color="0.5", ls="--", label="trained on P only")
    right.set(
        xlabel="q (images of S added)",
        ylabel="F gain on the rest of S (mean, seed range)",
        title="after adding q chosen images",
    )
    right.legend(fontsize=8)
    fig.savefig(path)
