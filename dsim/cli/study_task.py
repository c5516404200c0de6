"""``task=transfer_study``: the dataset-distance paper's transfer study as a job (:mod:`dsim.studies.transfer`).

``dsim -m experiment=transfer_study`` runs it on the shared photos; ``task.train``, ``task.train_masks``,
``task.pool``, ``task.pool_masks`` (folders or catalogue names) and ``task.far`` on anyone's. The job's
extractor is the grid's (``extractor=a,b`` gives one study each), its embeddings come from the shared store.
The job folder gets the study's tables and plot, ``study.json`` last; one MLflow run holds the headline
numbers, the files, and the datasets' fingerprints as inputs (a child of the sweep's parent run).
"""

from __future__ import annotations

from pathlib import Path

from dsim.cell.context import resolve_dataset
from dsim.configs import CellConfig, TaskConfig
from dsim.errors import DsimError
from dsim.records import STUDY_FILE

STRATEGIES = ("band", "kcenter", "random")
STUDY_TAG = "dsim.study"
#: the study's files in the job folder, logged as the run's artifacts
FILES = ("baseline.csv", "domains.csv", "adapted.csv", "summary.csv", "study.png", STUDY_FILE)


def study_config(config: CellConfig):
    """The study's :class:`~dsim.studies.transfer.study.StudyConfig` from the job's config, every key checked
    (folders exist, q, strategies and band make sense) before any work."""
    from dsim.extractors import from_config
    from dsim.studies.transfer.study import StudyConfig

    task = config.task
    folders = {key: _folder(task, key, config) for key in ("train", "train_masks", "pool", "pool_masks")}
    far = [_existing(resolve_dataset(f, config.dataset).path, "task.far") for f in task.far]
    if not task.q or min(task.q) < 1:
        raise DsimError(f"task.q must be a list of image counts >= 1 (as [1,3,7]), got {list(task.q)}")
    unknown = sorted(set(task.strategies) - set(STRATEGIES))
    if unknown or not task.strategies:
        raise DsimError(f"task.strategies must be a list of {', '.join(STRATEGIES)}, got {list(task.strategies)}")
    if len(task.band) != 2 or not 0 <= task.band[0] < task.band[1] <= 1:
        raise DsimError(f"task.band must be [low, high] with 0 <= low < high <= 1, got {list(task.band)}")
    return StudyConfig(
        train=folders["train"],
        train_masks=folders["train_masks"],
        pool=folders["pool"],
        pool_masks=folders["pool_masks"],
        far=far,
        extractor=from_config(config.extractor.node),
        q=tuple(sorted(set(task.q))),
        strategies=tuple(dict.fromkeys(task.strategies)),
        seeds=tuple(range(task.seeds)),
        band=(float(task.band[0]), float(task.band[1])),
        target_weight=task.target_weight,
        bootstrap=task.bootstrap,
        settings=config.embedding,
        limit=task.limit,
    )


def _folder(task: TaskConfig, key: str, config: CellConfig) -> Path:
    value = getattr(task, key)
    if not value:
        raise DsimError(
            f"task=transfer_study needs task.{key}=FOLDER (or experiment=transfer_study, which names the "
            "shared crack photos)"
        )
    path = resolve_dataset(value, config.dataset).path if not key.endswith("masks") else Path(value).expanduser()
    return _existing(path, f"task.{key}")


def _existing(path: Path, key: str) -> Path:
    if not Path(path).is_dir():
        raise DsimError(f"{key}: {path} is not a folder")
    return Path(path)


def run_study_task(config: CellConfig, job_dir: Path, *, parent_run_id: str | None = None, sweep_dir=None) -> dict:
    """Run the study into ``job_dir``, record its MLflow run, and return ``study.json``'s content."""
    from dsim.studies.transfer.study import run

    study = study_config(config)
    result = run(study, Path(job_dir), progress=config.progress)
    result["mlflow_run_id"] = _record(result, config, Path(job_dir), parent_run_id=parent_run_id, sweep_dir=sweep_dir)
    result["folder"] = str(job_dir)
    return result


def headline(result: dict) -> dict[str, float]:
    """The run's metrics: F on P and S, F against I_dist on S (ρ, slope, intervals), each strategy × q's gain
    over the P-only model and its difference from random (``kcenter.q1.vs_random``)."""
    stats = result["f_vs_i_dist"]
    metrics = {
        "train_f_score": result["train"]["f_score_mean"],
        "pool_f_score": result["pool"]["f_score_mean"],
        **{
            k: stats[k]
            for k in ("spearman", "spearman_ci_low", "spearman_ci_high", "slope", "slope_ci_low", "slope_ci_high")
            if k in stats
        },
    }
    for row in result["summary"]:
        prefix = f"{row['strategy']}.q{row['q']}"
        metrics[f"{prefix}.f_rest"] = row["f_rest_mean"]
        metrics[f"{prefix}.gain"] = row["gain_mean"]
        metrics[f"{prefix}.slope"] = row["slope_mean"]
        if row.get("vs_random_mean") is not None:
            metrics[f"{prefix}.vs_random"] = row["vs_random_mean"]
    for domain in result["domains"]:
        metrics[f"odist.{domain['domain']}"] = domain["odist"]
    return {k: float(v) for k, v in metrics.items() if v is not None and v == v}


def _record(result: dict, config: CellConfig, job_dir: Path, *, parent_run_id, sweep_dir) -> str | None:
    from dsim.tracking.mlflow_store import resolve_uri
    from dsim.tracking.queue import RunPlan, submit

    task = config.task
    sides = [("train", result["train"]), ("pool", result["pool"])]
    sides += [("far", domain) for domain in result["domains"][1:]]
    plan = RunPlan(
        name=f"transfer study {Path(result['pool']['path']).name} from {Path(result['train']['path']).name} "
        f"({result['extractor']})",
        uri=resolve_uri(config.tracking.uri, config.tracking.store_dir),
        experiment=config.tracking.experiment,
        tags={STUDY_TAG: "transfer", "dsim.extractor": result["extractor"]},
        params={
            "extractor": result["extractor"],
            "extractor_identity": result["extractor_identity"],
            "q": ",".join(map(str, task.q)),
            "strategies": ",".join(task.strategies),
            "seeds": task.seeds,
            "band": ",".join(map(str, task.band)),
            "target_weight": task.target_weight,
            "bootstrap": task.bootstrap,
            "limit": task.limit,
            "n_train": result["train"]["n"],
            "n_pool": result["pool"]["n"],
        },
        metrics=headline(result),
        datasets=[
            dict(
                name=Path(side["path"]).name,
                digest=side["fingerprint"],
                source=Path(side["path"]).resolve().as_uri(),
                context=role,
                profile={"n_images": side["n"], "fingerprint": side["fingerprint"]},
            )
            for role, side in sides
        ],
        artifacts=[(str(job_dir / name), None) for name in FILES],
        parent_run_id=parent_run_id,
        sweep_dir=str(sweep_dir) if sweep_dir and not parent_run_id else None,
        result_file=str(job_dir / STUDY_FILE),
    )
    return submit(plan, store_dir=config.tracking.store_dir, retry_s=config.tracking.retry_s)


def format_study(result: dict) -> str:
    """The study's summary as a few lines: F before adaptation, F against I_dist, each strategy × q's gain."""
    import pandas as pd

    stats = result["f_vs_i_dist"]
    lines = [
        f"transfer study ({result['extractor']}): trained on {Path(result['train']['path']).name} "
        f"({result['train']['n']} images), mean F {result['train']['f_score_mean']:.3f} there and "
        f"{result['pool']['f_score_mean']:.3f} on {Path(result['pool']['path']).name} ({result['pool']['n']} images)",
        f"F vs I_dist on {Path(result['pool']['path']).name}: spearman {stats['spearman']:.3f} "
        f"[{stats.get('spearman_ci_low', float('nan')):.3f}, {stats.get('spearman_ci_high', float('nan')):.3f}], "
        f"slope {stats['slope']:.3f} [{stats.get('slope_ci_low', float('nan')):.3f}, "
        f"{stats.get('slope_ci_high', float('nan')):.3f}]",
    ]
    columns = ["strategy", "q", "seeds", "f_rest_mean", "gain_mean", "gain_min", "gain_max", "slope_mean"]
    table = pd.DataFrame(result["summary"])
    if "vs_random_mean" in table:
        columns += ["vs_random_mean", "vs_random_seeds_above"]
        above = table["vs_random_seeds_above"]  # a count of seeds (none for random itself)
        table["vs_random_seeds_above"] = ["" if pd.isna(v) else str(int(v)) for v in above]
    lines += ["", table[columns].to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="")]
    return "\n".join(lines)
