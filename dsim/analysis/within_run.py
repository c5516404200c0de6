"""Entropy bias within one cell: does the metric's per-item value follow the images' entropy?

:func:`entropy_bias` runs on every cell's output, after its runner (an analysis step of
:mod:`dsim.pipeline.run`). Items are the rows of the cell's tables:

- the ``pairs`` table of a paired metric (one row per image pair, with the pair's entropy: the mean of
  its two images' entropies), and
- the per-image tables of a distribution metric (columns ``image_id``, ``relpath``; tables named
  ``per_image_reference`` / ``per_image_candidate``), to which it adds each image's ``entropy``.

Every float column of such a table that is not an entropy or a matching distance is a *score series*;
for each, Pearson r, its p-value, Spearman's rho and n against entropy go into the cell's values as
``<column>.entropy_pearson_r``, ``.entropy_pearson_p``, ``.entropy_spearman_rho``, ``.entropy_n``
(``psnr.entropy_pearson_r``, ``i_dist.entropy_pearson_r``), or ``<side>.<column>.entropy_*`` when both
sides' tables have that column. Records written by dsim 0.1 have unprefixed keys for a single series
(``entropy_pearson_r``); :func:`~dsim.analysis.correlation.entropy_bias_of` reads both. A scatter plot of
every series (``entropy_scatter.png``) and, for paired runs, the grid of the best, average and worst pairs
(``matches.png``) are written next to the tables and logged as artifacts.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dsim.analysis import plots
from dsim.analysis.correlation import correlate, entropy_bias_values
from dsim.cell.context import Added
from dsim.configs import CellConfig
from dsim.embeddings.entropy import entropies_for

#: float columns that are never score series
NON_SCORE_COLUMNS = frozenset({"entropy", "entropy_reference", "entropy_candidate", "match_distance", "rank"})
SCATTER_FILE = "entropy_scatter.png"
MATCHES_FILE = "matches.png"


def score_columns(table: pd.DataFrame) -> list[str]:
    """The float columns of ``table`` that hold per-item scores."""
    return [
        c
        for c in table.columns
        if c not in NON_SCORE_COLUMNS and not str(c).startswith("entropy") and pd.api.types.is_float_dtype(table[c])
    ]


def _side(table_name: str) -> str | None:
    last = table_name.rsplit("_", 1)[-1]
    return last if last in ("reference", "candidate") else None


def entropy_bias(config: CellConfig, output, artifact_dir: Path) -> Added:
    """The entropy bias of ``output``'s per-item tables: values, the tables with an ``entropy`` column, PNGs."""
    added = Added()
    series = []  # (side or table name, column, values, entropy)
    for name, table in output.tables.items():
        if name == "matches":
            continue
        side = _side(name)
        if "entropy" not in table.columns and {"image_id", "relpath"} <= set(table.columns) and side:
            table = table.assign(
                entropy=entropies_for(
                    getattr(output, side).root,
                    list(table["relpath"]),
                    cache_dir=config.cache_dir,
                    hashes=list(table["image_id"]),
                )
            )
            added.tables[name] = table
        if "entropy" not in table.columns:
            continue
        for column in score_columns(table):
            series.append((side or name, column, table[column].to_numpy(), table["entropy"].to_numpy()))
    if not series:
        return added

    columns = [column for _, column, _, _ in series]
    panels = []
    for owner, column, values, entropy in series:
        prefix = series_prefix(owner, column, shared=columns.count(column) > 1)
        added.values.update(entropy_bias_values(values, entropy, prefix))
        panels.append((prefix.rstrip("."), values, entropy, correlate(values, entropy)))

    artifact_dir = Path(artifact_dir)
    artifact_dir.mkdir(parents=True, exist_ok=True)
    metric = config.metric.name
    title = f"{metric}: {output.reference.name} vs {output.candidate.name}"
    added.files.append(plots.entropy_scatter(artifact_dir / SCATTER_FILE, panels, title=f"entropy bias — {title}"))
    matches = output.tables.get("matches")
    if matches is not None and len(matches) and metric in matches.columns:
        added.files.append(
            plots.match_grid(
                artifact_dir / MATCHES_FILE,
                matches,
                metric,
                reference_root=output.reference.root,
                candidate_root=output.candidate.root,
                title=f"best / average / worst pairs — {title}",
            )
        )
    return added


def series_prefix(owner: str, column: str, *, shared: bool) -> str:
    """The key prefix of a score series: ``<column>.``, or ``<side>.<column>.`` when two of the cell's tables
    have that column (decided by the metric's per-image columns, so a metric's keys never change shape)."""
    return f"{owner}.{column}." if shared else f"{column}."
