"""``dsim audit``: which extractor × metric can I trust for these images?

``dsim audit REF [--against DIR ...] --extractors E1,E2 --metrics fid,odist --out DIR`` measures, per
extractor × metric, how each responds to graded blur, noise, JPEG, brightness (±30 %) and crop of REF
against REF, in units of its noise floor, and how well it separates and orders the known-different
``--against`` sets (:mod:`dsim.analysis.audit` says what each property is).

It is one ordinary sweep: every audit point is a config file of the ``experiment`` group written to
``DIR/conf/experiment/`` (the pair, the perturbation through ``perturb=``, ``metric.floor``), and the grid
``experiment=<points> × extractor × metric`` runs through the ``dsim`` command into ``DIR/sweep`` — the
embedding store, the perturbed folders and the cell path are the grid's own, and any launcher runs it
(arguments after ``--`` go to the sweep: ``-- hydra/launcher=joblib``). Then ``DIR`` gets ``audit.csv`` (a row
per extractor × metric), ``audit_cells.csv``, one plot per property and ``recommendation.txt``, printed and
logged on the sweep's MLflow parent run under ``audit/``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

from dsim.errors import DsimError
from dsim.tracking.mlflow_store import DEFAULT_RETRY_S, DEFAULT_STORE_DIR

#: how the sweep is started: the ``dsim`` command in a child process (Hydra owns its process's state)
DSIM = [sys.executable, "-c", "import sys; from dsim.cli.app import main; sys.exit(main())"]
SWEEP_DIR = "sweep"
CONF_DIR = "conf"


def _parser() -> argparse.ArgumentParser:
    from dsim.analysis.audit import DEGRADATIONS
    from dsim.embeddings.embed import DEFAULT_CACHE_DIR

    parser = argparse.ArgumentParser(
        prog="dsim audit",
        description=__doc__.splitlines()[0].split(": ", 1)[1],
        epilog="Arguments after -- go to the sweep, e.g. -- hydra/launcher=joblib batch_size=64",
    )
    parser.add_argument("reference", metavar="REF", help="the image folder to audit the distances on")
    parser.add_argument(
        "--against",
        nargs="+",
        action="extend",
        default=[],
        metavar="DIR",
        help="known-different image folders (separation; two or more: rank stability)",
    )
    parser.add_argument("--extractors", default="efficientnet_lite0,pixels", help="comma-separated extractor names")
    parser.add_argument("--metrics", default="fid", help="comma-separated distribution metrics (default: fid)")
    parser.add_argument(
        "--degradations",
        default=",".join(DEGRADATIONS),
        help=f"comma-separated, of {', '.join(DEGRADATIONS)} (default: all)",
    )
    parser.add_argument("--out", required=True, help="the folder for the audit's files and its sweep")
    parser.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR, help="the embedding store (default: cache)")
    parser.add_argument("--store-dir", default=DEFAULT_STORE_DIR, help="the MLflow store folder (default: mlruns)")
    parser.add_argument("--tracking-uri", default=None, help="an MLflow tracking URI (default: the store folder)")
    parser.add_argument("--experiment", default="dsim", help="the MLflow experiment (default: dsim)")
    return parser


def _names(text: str, what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise DsimError(f"dsim audit: --{what} is empty; give a comma-separated list")
    return names


def check(args) -> tuple[Path, list[Path], list[str], list[str]]:
    """REF and the ``--against`` folders (absolute), the metrics and degradations: one-line errors first."""
    from dsim.analysis.audit import DEGRADATIONS
    from dsim.data.images import resolve_dataset_dir
    from dsim.metrics import check_floor, lookup

    reference = resolve_dataset_dir(Path(args.reference)).resolve()
    against = [resolve_dataset_dir(Path(folder)).resolve() for folder in args.against]
    if reference in against:
        raise DsimError(f"dsim audit: {reference} is REF and also an --against set; give sets that differ from REF")
    metrics = _names(args.metrics, "metrics")
    for name in metrics:
        check_floor(lookup(name))  # floor units need a floor: distribution metrics that compare two sets
    degradations = _names(args.degradations, "degradations")
    unknown = [d for d in degradations if d not in DEGRADATIONS]
    if unknown:
        raise DsimError(
            f"dsim audit: unknown degradation(s) {', '.join(unknown)}; choose from {', '.join(DEGRADATIONS)}"
        )
    _names(args.extractors, "extractors")
    return reference, against, metrics, degradations


def set_names(against: list[Path]) -> list[str]:
    """A unique short name per ``--against`` folder (its folder name; a parent's name where two clash)."""
    names = [folder.name for folder in against]
    return [name if names.count(name) == 1 else f"{folder.parent.name}_{name}" for name, folder in zip(names, against)]


def audit_points(reference: Path, against: list[Path], degradations: list[str]) -> dict[str, dict]:
    """The experiment files of the audit: file stem → config (see the module's docstring)."""
    from dsim.analysis.audit import DEGRADATIONS, point_name

    points: dict[str, dict] = {}

    def add(pair: str, ref: Path, candidate: Path, *, floor: bool, perturb: tuple[str, float] | None = None):
        config: dict = {}
        if perturb is not None:
            config["defaults"] = [{"override /perturb": perturb[0]}]
            config["perturb"] = {"strength": perturb[1]}
        config["pair"] = {"name": pair, "reference": str(ref), "candidate": str(candidate)}
        config["metric"] = {"floor": floor}
        points[f"audit_{len(points):03d}"] = config

    for name in degradations:
        for strength in DEGRADATIONS[name].strengths:
            add(point_name("degraded", name, strength), reference, reference, floor=True, perturb=(name, strength))
    for j, folder in enumerate(against):
        add(point_name("separation", j), reference, folder, floor=True)
    if len(against) >= 2:  # the order of the sets by distance, before and after each degradation
        for j, folder in enumerate(against):
            add(point_name("order", j), folder, reference, floor=False)
            for name in degradations:
                for strength in DEGRADATIONS[name].strengths:
                    add(
                        point_name("order", j, name, strength), folder, reference, floor=False, perturb=(name, strength)
                    )
    return points


def write_points(points: dict[str, dict], conf_dir: Path) -> None:
    from dsim.util.fileio import atomic_write_text

    folder = conf_dir / "experiment"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("audit_*.yaml"):  # a rerun with fewer points: no stale point is swept
        if old.stem not in points:
            old.unlink()
    for stem, config in points.items():
        text = "# @package _global_\n# a point of `dsim audit` (written by it; rerunning the audit rewrites it)\n"
        atomic_write_text(folder / f"{stem}.yaml", text + yaml.safe_dump(config, sort_keys=False))


def run(argv: list[str]) -> None:
    own, sweep_args = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    args = _parser().parse_args(own)
    reference, against, metrics, degradations = check(args)
    out = Path(args.out).resolve()
    points = audit_points(reference, against, degradations)
    write_points(points, out / CONF_DIR)
    extractors = _names(args.extractors, "extractors")
    tracking = [f"tracking.store_dir={args.store_dir}", f"tracking.experiment={args.experiment}"]
    if args.tracking_uri:
        tracking.append(f"tracking.uri={args.tracking_uri}")
    command = [
        *DSIM, "-m", f"--config-dir={out / CONF_DIR}", f"experiment={','.join(points)}",
        f"extractor={','.join(extractors)}", f"metric={','.join(metrics)}", f"hydra.sweep.dir={out / SWEEP_DIR}",
        f"cache_dir={args.cache_dir}", *tracking, *sweep_args,
    ]  # fmt: skip
    n_cells = len(points) * len(extractors) * len(metrics)
    print(f"dsim audit: {len(points)} points x {len(extractors)} extractor(s) x {len(metrics)} metric(s) = "
          f"{n_cells} cells, swept into {out / SWEEP_DIR}", flush=True)  # fmt: skip
    done = subprocess.run(command)
    if done.returncode != 0:
        raise DsimError(f"dsim audit: the sweep failed (exit {done.returncode}; its errors are above); "
                        f"rerunning the audit computes only the missing cells")  # fmt: skip
    summarise(out, reference, against, degradations, args)


def summarise(out: Path, reference: Path, against: list[Path], degradations: list[str], args) -> None:
    """The audit's files from its sweep's records, printed and logged on the sweep's parent run."""
    from dsim import results
    from dsim.analysis import audit

    names = set_names(against)
    records = results.collect(out / SWEEP_DIR)
    cells = audit.cell_frame(records)
    cells["set"] = [names[int(j)] if isinstance(j, str) and j.isdigit() else j for j in cells["set"]]
    table = audit.audit_table(cells, names, degradations)
    text = audit.recommendation(table, reference.name, degradations, names)
    written = audit.write(table, cells, text, out)
    shown = table[["extractor", "metric", *[c for c in table.columns if c.startswith(("sensitivity_", "separation_"))]]]
    print(f"\n{shown.to_string(index=False, float_format=lambda v: f'{v:.3g}')}\n\n{text}\n")
    print(f"audit: {out / audit.AUDIT_CSV}")
    _log(out, written, table, args)


def _log(out: Path, written: list[Path], table, args) -> None:
    """The audit's files (and its headline numbers) on the sweep's parent run, under ``audit/``."""
    import math

    from dsim.tracking.mlflow_store import resolve_uri
    from dsim.tracking.queue import RunPlan, parent_run_id, submit

    parent = parent_run_id(out / SWEEP_DIR)
    if parent is None:
        print("dsim audit: the sweep has no MLflow parent run yet (`dsim sync` logs it); audit files kept in "
              f"{out}", file=sys.stderr)  # fmt: skip
        return
    metrics = {
        f"audit.{row['extractor']}.{row['metric']}.{column}": float(row[column])
        for row in table.to_dict("records")
        for column in table.columns
        if column not in ("extractor", "metric") and isinstance(row[column], float) and math.isfinite(row[column])
    }
    plan = RunPlan(
        name=f"sweep {SWEEP_DIR}",
        uri=resolve_uri(args.tracking_uri, args.store_dir),
        experiment=args.experiment,
        tags={"dsim.audit": str(out)},
        metrics=metrics,
        artifacts=[(str(path), "audit") for path in written],
        sweep_dir=str(out / SWEEP_DIR),
        kind="sweep",
        run_id=parent,
    )
    submit(plan, store_dir=args.store_dir, retry_s=DEFAULT_RETRY_S)
