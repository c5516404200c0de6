"""A cell's record: the ``result.json`` content, its MLflow tags, params and dataset inputs, and its tables."""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path

import pandas as pd

from dsim import __version__
from dsim.cell.context import CellOutput
from dsim.configs import CellConfig
from dsim.data.dvc import experiment_name
from dsim.data.lineage import dvc_lineage
from dsim.records import CellRecord, Side
from dsim.util.fileio import atomic_write_text

#: the MLflow tag with a cell's headline value names, comma-separated (``dsim report`` reads it)
HEADLINE_TAG = "dsim.headline"


def dataset_input(record: CellRecord, role: str) -> dict:
    """The pair side as an MLflow dataset input: name, content digest, source path, DVC lineage."""
    side = record.side(role)
    return dict(
        name=side.name,
        digest=side.fingerprint,
        source=Path(side.path).as_uri(),
        context=role,
        profile={
            "n_images": side.n,
            "fingerprint": side.fingerprint,
            **{k: v for k, v in side.lineage.items() if v is not None},
        },
    )


SHOWN_SKIPPED = 5  # skipped images named in the warning line (all of them are in skipped_<side>.csv)


def write_tables(output: CellOutput, directory: Path) -> list[Path]:
    """Per-image tables, both datasets' manifests (relpath, sha256) and the images skipped as unreadable
    (relpath, reason; with one warning line naming the first few) as CSV files in ``directory``."""
    tables = dict(output.tables)
    for side in ("reference", "candidate"):
        summary = getattr(output, side)
        tables[f"manifest_{side}"] = pd.DataFrame(summary.manifest, columns=["relpath", "sha256"])
        if summary.skipped:
            tables[f"skipped_{side}"] = pd.DataFrame(sorted(summary.skipped.items()), columns=["relpath", "reason"])
            shown = ", ".join(f"{rel} ({reason})" for rel, reason in sorted(summary.skipped.items())[:SHOWN_SKIPPED])
            more = len(summary.skipped) - SHOWN_SKIPPED
            warnings.warn(
                f"{side} {summary.name}: skipped {len(summary.skipped)} unreadable image(s): {shown}"
                + (f" and {more} more" if more > 0 else "")
                + f" (all in {directory / f'skipped_{side}.csv'})",
                stacklevel=2,
            )
    written = []
    for name, table in tables.items():
        path = directory / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, table.to_csv(index=False))
        written.append(path)
    return written


def build_record(config: CellConfig, output: CellOutput, pair: str, spec) -> CellRecord:
    """The record of a cell's output (``spec``: the metric's declaration, for the values' roles)."""
    extractor = output.extractor
    weights = extractor.resolved_weights if extractor is not None else None
    sides = {
        role: Side(
            name=summary.name,
            path=str(summary.root),
            fingerprint=summary.fingerprint,
            lineage=dvc_lineage(summary.root).as_dict(),
            n=summary.n,
            skipped=summary.skipped,
            embedded=summary.n_embedded,
        )
        for role, summary in (("reference", output.reference), ("candidate", output.candidate))
    }
    return CellRecord(
        extractor=extractor.name if extractor is not None else "none",
        metric=config.metric.name,
        pair=pair,
        reference=sides["reference"],
        candidate=sides["candidate"],
        values=output.values,
        value_roles={key: spec.role(key) for key in output.values},
        value_ranges={key: list(spec.ranges[key]) for key in output.values if key in spec.ranges} or None,
        extractor_identity=extractor.identity if extractor is not None else "none",
        weights_checksum=weights.checksum if weights is not None else "none",
        random_weights=bool(output.random_weights or (extractor is not None and extractor.is_random)),
        git_commit=git_commit(Path.cwd()),
        dvc_experiment=experiment_name(),
        dsim_version=__version__,
    )


def run_tags(record: CellRecord) -> dict[str, str]:
    tags = {
        "dsim.extractor": record.extractor,
        "dsim.extractor.identity": record.extractor_identity,
        "dsim.extractor.weights_checksum": record.weights_checksum,
        "dsim.extractor.random_weights": str(record.random_weights).lower(),
        "dsim.metric": record.metric,
        "dsim.pair": record.pair,
        "dsim.reference.fingerprint": record.reference.fingerprint,
        "dsim.candidate.fingerprint": record.candidate.fingerprint,
        "dsim.reference.dvc_md5": str(record.reference.lineage.get("dvc_md5")),
        "dsim.candidate.dvc_md5": str(record.candidate.lineage.get("dvc_md5")),
        "dsim.n_skipped": str(len(record.reference.skipped) + len(record.candidate.skipped)),
        "dsim.git_commit": record.git_commit,
        "dsim.version": record.dsim_version,
        HEADLINE_TAG: ",".join(record.headline() or []),
        "mlflow.source.git.commit": record.git_commit.removesuffix("+dirty"),
    }
    if record.dvc_experiment:
        tags["dsim.dvc_experiment"] = record.dvc_experiment
    perturbation = (record.config or {}).get("perturb.name")
    if perturbation not in (None, "none"):
        tags["dsim.data.perturb"] = f"{perturbation}:{record.config.get('perturb.strength')}"
    if record.generator:
        tags.update(
            {
                "dsim.generator": record.generator["name"],
                "dsim.generator.identity": record.generator["identity"],
                "dsim.generator.checkpoint_sha256": str(record.generator.get("checkpoint_sha256")),
            }
        )
    if record.interval:
        tags["dsim.interval"] = (
            f"{record.interval['method']}, {record.interval['level']:.0%}, {record.interval['replicates']} replicates"
        )
    if record.floor:
        sizes = record.floor["sizes"]
        tags["dsim.floor"] = (
            f"{record.floor['repeats']} splits: reference A ({sizes['A']}) vs B and candidate C ({sizes['B and C']})"
        )
    if record.random_weights:
        tags["dsim.warning"] = "RANDOM WEIGHTS: plumbing test only, not a real result"
    return tags


def git_commit(directory: Path) -> str:
    """``HEAD`` of the git work tree at ``directory`` (``+dirty`` when modified), or ``unknown``."""
    try:
        head = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(directory), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def flatten(mapping: dict, prefix: str = "") -> dict[str, object]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (lists kept as values)."""
    flat = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat
