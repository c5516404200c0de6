"""``dsim select``: choose the pool images to label next, by their distance from the train set.

Both folders are embedded through one extractor (the cache is reused and filled), every pool image gets
its I_dist from the train set (O_dist's per-image distance) and its min-max-scaled value, and a strategy
picks q images for each q (``band``: in a band of scaled I_dist, spread by farthest-point sampling;
``kcenter``: greedy k-center given the train set; ``random``: the baseline). The choices for the q's are
nested (the first q picks). Written to ``--out``: ``selection.csv`` (every pool image: image, sha256,
i_dist, scaled, rank, q<N>), a folder ``q<N>/`` of links per q (copies with ``--copy``) that any dsim
command or ``dvc add`` takes as a dataset, ``selection.png`` and ``selection.json``; one MLflow run holds
them with both datasets' fingerprints. The same inputs and ``--seed`` give the same choice.
"""

from __future__ import annotations

import argparse
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from dsim.errors import DsimError
from dsim.tracking.mlflow_store import DEFAULT_RETRY_S, DEFAULT_STORE_DIR

SUMMARY_FILE = "selection.json"
TABLE_FILE = "selection.csv"
PLOT_FILE = "selection.png"
LOCK_FILE = ".selection.lock"
SELECTION_TAG = "dsim.selection"


def _parser() -> argparse.ArgumentParser:
    from dsim.analysis.selection import DEFAULT_COMPONENTS, STRATEGIES
    from dsim.embeddings.embed import DEFAULT_CACHE_DIR

    parser = argparse.ArgumentParser(prog="dsim select", description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("--train", required=True, help="the image folder the model was trained on (P)")
    parser.add_argument("--pool", required=True, help="the image folder to choose from (S)")
    parser.add_argument("--q", default="1,3,7", help="how many images to choose, comma-separated (default: 1,3,7)")
    parser.add_argument("--strategy", default="band", choices=STRATEGIES, help="how to choose (default: band)")
    parser.add_argument("--band", default="0.6,1", help="band: the scaled I_dist range to choose in (default: 0.6,1)")
    parser.add_argument("--extractor", default="efficientnet_lite0", help="an extractor name (see `dsim weights`)")
    parser.add_argument("--weights", default=None, help="default | random | PATH")
    parser.add_argument("--seed", type=int, default=0, help="seeds band's first pick and random (default: 0)")
    parser.add_argument("--components", type=int, default=DEFAULT_COMPONENTS, help="I_dist's PCA components")
    parser.add_argument("--out", required=True, help="the folder to write the selection into")
    parser.add_argument("--copy", action="store_true", help="copy the chosen images instead of linking them")
    parser.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-workers", type=int, default=None, help="decoding processes (default: by the CPUs)")
    parser.add_argument("--on-error", default="raise", choices=["raise", "skip"])
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--store-dir", default=DEFAULT_STORE_DIR, help="the MLflow store folder (default: mlruns)")
    parser.add_argument("--tracking-uri", default=None, help="an MLflow tracking URI (default: the store folder)")
    parser.add_argument("--experiment", default="dsim", help="the MLflow experiment (default: dsim)")
    return parser


def _counts(text: str) -> list[int]:
    try:
        counts = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        counts = []
    if not counts or counts[0] < 1:
        raise DsimError(f"--q must be positive integers separated by commas (e.g. 1,3,7), got {text!r}")
    return counts


def _band(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        low = high = float("nan")
    if not 0 <= low < high <= 1:
        raise DsimError(f"--band must be two numbers 0 <= low < high <= 1 (e.g. 0.6,1), got {text!r}")
    return low, high


def _outside(out: Path, folders: dict[str, str]) -> None:
    for role, folder in folders.items():
        if out.resolve().is_relative_to(Path(folder).resolve()):
            raise DsimError(f"--out {out} is inside the {role} folder {folder}; put the selection outside the datasets")


def run(argv: list[str]) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    counts, band, out = _counts(args.q), _band(args.band), Path(args.out)
    _outside(out, {"train": args.train, "pool": args.pool})
    from dsim.analysis.selection import min_max_scaled, pick_order, pool_distances
    from dsim.embeddings.embed import embed
    from dsim.extractors import build

    extractor = build(args.extractor, weights=args.weights or "default")
    options = dict(
        device=args.device,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        cache_dir=args.cache_dir,
        on_error=args.on_error,
        progress=not args.no_progress,
    )
    train, pool = (embed(folder, extractor=extractor, **options) for folder in (args.train, args.pool))
    _warn_overlap(train, pool)
    progress = not args.no_progress
    i_dist = pool_distances(train, pool, n_components=args.components, progress=progress)
    scaled = min_max_scaled(i_dist)
    order = pick_order(
        args.strategy, train, pool, scaled, count=counts[-1], band=band, seed=args.seed, progress=progress
    )
    table = selection_table(pool, i_dist, scaled, order, counts, band=band if args.strategy == "band" else None)
    from filelock import FileLock

    from dsim.util.fileio import ensure_dir

    with FileLock(ensure_dir(out, "--out") / LOCK_FILE):  # two runs into one folder: one after the other
        (out / SUMMARY_FILE).unlink(missing_ok=True)  # no summary while the folder is being rewritten
        for stale in [*out.glob(".q*.tmp"), *out.glob(".q*.old")]:  # left by a run killed while writing
            shutil.rmtree(stale, ignore_errors=True)
        summary = write_selection(out, table, pool, counts, args, scaled=scaled, order=order, band=band)
        summary.update(
            train=_side(train, args.train),
            pool=_side(pool, args.pool),
            extractor=extractor.describe() | {"identity": extractor.identity},
        )
        _record(out, summary, args)
    _print(summary, out)


def _warn_overlap(train, pool) -> None:
    shared = len(set(train.hashes) & set(pool.hashes))
    if shared:
        warnings.warn(
            f"{shared} pool images are also in the train set (same content); their I_dist is small, "
            "and kcenter never picks them",
            stacklevel=2,
        )


def selection_table(pool, i_dist, scaled, order, counts, *, band=None) -> pd.DataFrame:
    """A row per pool image: image, sha256, i_dist, scaled[, in_band], rank (1 = first pick), q<N> flags;
    the picks first, in the order picked, then the rest in the pool's order."""
    rank = np.zeros(len(pool), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    table = pd.DataFrame({"image": pool.ids, "sha256": pool.hashes, "i_dist": i_dist, "scaled": scaled})
    if band is not None:
        table["in_band"] = (scaled >= band[0]) & (scaled <= band[1])
    table["rank"] = pd.Series(rank).where(rank > 0).astype("Int64")
    for q in counts:
        table[f"q{q}"] = (rank > 0) & (rank <= q)
    return pd.concat([table.iloc[order], table[rank == 0]])


def write_selection(out: Path, table: pd.DataFrame, pool, counts, args, *, scaled, order, band) -> dict:
    """``selection.csv``, a folder per q and ``selection.png`` in ``out``; the summary for ``selection.json``."""
    from dsim.analysis.plots import selection_plot
    from dsim.data.links import write_image_folder
    from dsim.util.fileio import atomic_write_text

    atomic_write_text(out / TABLE_FILE, table.to_csv(index=False))
    chosen = {}
    for q in counts:
        picked = [pool.ids[row] for row in order[:q]]
        write_image_folder(pool.root, picked, out / f"q{q}", copy=args.copy)
        chosen[f"q{q}"] = {
            "folder": f"q{q}",
            "images": picked,
            "mean_scaled": float(scaled[order[:q]].mean()),
            "mean_i_dist": float(table["i_dist"].iloc[:q].mean()),  # the table starts with the picks
        }
    selection_plot(
        out / PLOT_FILE,
        scaled,
        {q: order[:q] for q in counts},
        title=f"{args.strategy}: {Path(args.pool).name} from {Path(args.train).name}",
        band=band if args.strategy == "band" else None,
    )
    return {
        "strategy": args.strategy,
        "q": counts,
        "band": list(band) if args.strategy == "band" else None,
        "seed": args.seed,
        "components": args.components,
        "links": "copies" if args.copy else "symlinks",
        "chosen": chosen,
        "n_in_band": int(table["in_band"].sum()) if "in_band" in table else None,
    }


def _side(embeddings, folder: str) -> dict:
    from dsim.data.lineage import dvc_lineage

    return {
        "path": str(Path(folder).resolve()),
        "n": len(embeddings),
        "fingerprint": embeddings.fingerprint,
        "embedded": embeddings.n_computed,
        "skipped": len(embeddings.skipped),
        "lineage": dvc_lineage(folder).as_dict(),
    }


def _record(out: Path, summary: dict, args) -> None:
    """``selection.json`` (written last: it means the folder is complete), then its MLflow run."""
    from dsim.records import write_json
    from dsim.tracking.mlflow_store import resolve_uri
    from dsim.tracking.queue import RunPlan, submit

    summary["embedded"] = {"train": summary["train"]["embedded"], "pool": summary["pool"]["embedded"]}
    write_json(out / SUMMARY_FILE, summary)
    extractor = summary["extractor"]["name"]
    plan = RunPlan(
        name=f"select {args.strategy} {Path(args.pool).name} from {Path(args.train).name} ({extractor})",
        uri=resolve_uri(args.tracking_uri, args.store_dir),
        experiment=args.experiment,
        tags={SELECTION_TAG: args.strategy, "dsim.extractor": extractor},
        params={
            "strategy": args.strategy,
            "q": ",".join(map(str, summary["q"])),
            "band": args.band,
            "seed": args.seed,
            "components": args.components,
            "extractor": extractor,
            "extractor_identity": summary["extractor"]["identity"],
            "copy": args.copy,
        },
        metrics={
            **{f"{q}_mean_scaled": c["mean_scaled"] for q, c in summary["chosen"].items()},
            **{f"{q}_mean_i_dist": c["mean_i_dist"] for q, c in summary["chosen"].items()},
            "n_train": summary["train"]["n"],
            "n_pool": summary["pool"]["n"],
            **({"n_in_band": summary["n_in_band"]} if summary["n_in_band"] is not None else {}),
        },
        datasets=[
            dict(
                name=Path(side["path"]).name,
                digest=side["fingerprint"],
                source=Path(side["path"]).as_uri(),
                context=role,
                profile={
                    "n_images": side["n"],
                    "fingerprint": side["fingerprint"],
                    **{k: v for k, v in side["lineage"].items() if v is not None},
                },
            )
            for role, side in (("train", summary["train"]), ("pool", summary["pool"]))
        ],
        artifacts=[(str(out / name), None) for name in (SUMMARY_FILE, TABLE_FILE, PLOT_FILE)],
        result_file=str(out / SUMMARY_FILE),
    )
    summary["mlflow_run_id"] = submit(plan, store_dir=args.store_dir, retry_s=DEFAULT_RETRY_S)


def _print(summary: dict, out: Path) -> None:
    print(
        f"{summary['strategy']}: {summary['pool']['n']} pool images, {summary['train']['n']} train images"
        + (f", {summary['n_in_band']} in the band" if summary["n_in_band"] is not None else "")
    )
    print(f"{'q':>5}  {'mean scaled':>11}  {'mean I_dist':>12}  folder")
    for q, chosen in summary["chosen"].items():
        print(f"{q[1:]:>5}  {chosen['mean_scaled']:>11.3f}  {chosen['mean_i_dist']:>12.5g}  {out / chosen['folder']}")
    logged = summary.get("mlflow_run_id")
    print(f"{out / TABLE_FILE}; MLflow run " + (logged or "queued (dsim sync logs it)"))
