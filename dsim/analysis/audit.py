"""Which extractor × metric can I trust for these images? The properties ``dsim audit`` measures.

The audit's sweep (:mod:`dsim.cli.commands.audit`) gives, per extractor × metric, cells of four kinds, named
by their pair (:func:`point_name`):

- ``degraded@<d>@<strength>``: REF against REF under degradation ``d`` (``perturb=``), with the noise floor;
- ``separation@<j>``: REF against the known-different set ``j``, with the noise floor;
- ``order@<j>``: set ``j`` against REF, and ``order@<j>@<d>@<strength>``: set ``j`` against degraded REF
  (the order of the sets by distance, before and after the degradation).

Every distance is read in **floor units** (:func:`floor_units`): the value at the floor's sizes over the
floor (:mod:`dsim.metrics.floor`), 1 = "as far apart as two samples of REF". A value whose metric is better
when higher (precision, coverage) is turned into a distance first (floor over value). Per extractor × value
the audit reports

- ``sensitivity_<d>``: the least-squares slope of floor units against the degradation's amount
  (:data:`DEGRADATIONS` says its unit: px of blur, σ of noise, JPEG quality points lost, fraction cropped);
- ``monotonicity_<d>``: Spearman's ρ of floor units against the amount (1: every step farther);
- ``nuisance_brightness``: the mean floor units at brightness ×0.7 and ×1.3 (low is good when brightness
  is a nuisance);
- ``separation_<j>``: floor units of REF against set ``j``;
- ``rank_stability_<d>``: Kendall's τ between the order of the sets before and after the degradation,
  averaged over its strengths (the crack paper's closest/farthest check; needs two sets or more);
- ``interval_width``: the floor's 95 % interval width over the floor, median over the degraded cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dsim.analysis import plots
from dsim.errors import DsimError
from dsim.records import CellRecord
from dsim.util.fileio import atomic_write_text


@dataclass(frozen=True)
class Degradation:
    """A graded degradation: the perturbation, its strengths, and how a strength becomes an amount."""

    name: str
    strengths: tuple[float, ...]
    unit: str
    per: str  # one unit, as a sentence says it ("floor units per px")

    def amount(self, strength: float) -> float:
        """The amount of degradation of ``strength`` in :attr:`unit` (0: none)."""
        if self.name == "jpeg":
            return 100.0 - strength
        if self.name == "brightness":
            return abs(strength - 1.0)
        return float(strength)


#: the audit's degradations, strengths as ``perturb.strength`` takes them (brightness: ±30 %, the nuisance)
DEGRADATIONS = {
    d.name: d
    for d in (
        Degradation("blur", (0.5, 1.0, 2.0, 4.0), "px of Gaussian radius", "px"),
        Degradation("noise", (4.0, 8.0, 16.0, 32.0), "sigma of 8-bit noise", "8-bit sigma"),
        Degradation("jpeg", (90.0, 70.0, 50.0, 30.0, 10.0), "JPEG quality points below 100", "quality point"),
        Degradation("brightness", (0.7, 0.85, 1.15, 1.3), "brightness factor away from 1", "unit of factor"),
        Degradation("crop", (0.05, 0.1, 0.2, 0.3), "fraction of each side cut away", "unit of side fraction"),
    )
}
NUISANCE = "brightness"
SEPARATOR = "@"
NUISANCE_STRENGTHS = (0.7, 1.3)
#: a nuisance within this many floor units reads as "stable" (1: as far as two samples of REF)
STABLE_FLOOR_UNITS = 1.25
AUDIT_CSV = "audit.csv"
RECOMMENDATION_FILE = "recommendation.txt"


def point_name(kind: str, *parts) -> str:
    """A cell's pair name in the audit's sweep: ``degraded@blur@2``, ``separation@0``, ``order@1@jpeg@30``."""
    return SEPARATOR.join([kind, *(f"{p:g}" if isinstance(p, float) else str(p) for p in parts)])


def parse_point(pair: str) -> tuple[str, str | None, str | None, float]:
    """(kind, set index, degradation, strength) of an audit pair name (:func:`point_name`)."""
    kind, *parts = pair.split(SEPARATOR)
    against = parts.pop(0) if kind in ("separation", "order") and parts else None
    degradation, strength = (parts[0], float(parts[1])) if len(parts) == 2 else (None, math.nan)
    return kind, against, degradation, strength


def floor_units(values: dict, name: str, higher_is_better: bool) -> float:
    """Value ``name`` of a floored cell as a distance in floor units (see the module's docstring); where the
    floor's interval reaches 0 (KID), the value at the floor's sizes over the floor's upper end."""
    at, floor, high = (values.get(f"{name}_{k}", math.nan) for k in ("at_floor_n", "floor", "floor_ci_high"))
    ratio = values.get(f"{name}_over_floor", math.nan)
    if higher_is_better:
        return floor / at if at > 0 and floor > 0 else math.nan
    if math.isfinite(ratio):
        return ratio
    return at / high if high > 0 else math.nan


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    keep = np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 2 or np.ptp(x) == 0:
        return math.nan
    return float(np.polyfit(x, y, 1)[0])


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    keep = np.isfinite(y)
    if keep.sum() < 3 or np.ptp(y[keep]) == 0:
        return math.nan
    return float(spearmanr(x[keep], y[keep]).statistic)


def _kendall(a: list[float], b: list[float]) -> float:
    from scipy.stats import kendalltau

    if len(a) < 2 or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return math.nan
    return float(kendalltau(a, b).statistic)


def cell_frame(records: list[dict]) -> pd.DataFrame:
    """One row per audit cell × headline value: extractor, value, kind, set, degradation, strength, amount,
    raw value, floor units (for floored cells), the floor's relative interval width."""
    from dsim.metrics import lookup

    rows = []
    for record in records:
        cell = CellRecord.from_json(record)
        kind, against, degradation, strength = parse_point(cell.pair)
        if kind not in ("degraded", "separation", "order"):
            continue
        spec = lookup(cell.metric)
        for name in cell.headline() or spec.headline():
            floor = cell.values.get(f"{name}_floor", math.nan)
            width = cell.values.get(f"{name}_floor_ci_high", math.nan) - cell.values.get(
                f"{name}_floor_ci_low", math.nan
            )
            rows.append(
                {
                    "extractor": cell.extractor,
                    "metric": name,
                    "kind": kind,
                    "set": against,
                    "degradation": degradation,
                    "strength": strength,
                    "amount": DEGRADATIONS[degradation].amount(strength) if degradation else math.nan,
                    "value": cell.values[name],
                    "distance": cell.values[name] if not spec.higher_is_better else -cell.values[name],
                    "floor_units": floor_units(cell.values, name, spec.higher_is_better)
                    if f"{name}_floor" in cell.values
                    else math.nan,
                    "interval_width": width / floor if floor and math.isfinite(floor) and floor > 0 else math.nan,
                }
            )
    return pd.DataFrame(rows)


def audit_table(cells: pd.DataFrame, sets: list[str], degradations: list[str]) -> pd.DataFrame:
    """A row per extractor × value with the properties of the module's docstring (columns named by property
    and degradation or set: ``sensitivity_blur``, ``separation_<set>``)."""
    if cells.empty:
        raise DsimError("dsim audit: the sweep recorded no audit cells; see its errors above")
    rows = []
    for (extractor, metric), own in cells.groupby(["extractor", "metric"], sort=False):
        row: dict = {"extractor": extractor, "metric": metric}
        graded = own[own["kind"] == "degraded"]
        for name in degradations:
            points = graded[graded["degradation"] == name].sort_values("amount")
            x, y = points["amount"].to_numpy(float), points["floor_units"].to_numpy(float)
            row[f"sensitivity_{name}"] = _slope(x, y)
            row[f"monotonicity_{name}"] = _spearman(x, y)
        if NUISANCE in degradations:
            nuisance = graded[(graded["degradation"] == NUISANCE) & graded["strength"].isin(NUISANCE_STRENGTHS)]
            row[f"nuisance_{NUISANCE}"] = float(nuisance["floor_units"].mean()) if len(nuisance) else math.nan
        separated = own[own["kind"] == "separation"]
        for name in sets:
            found = separated[separated["set"] == name]["floor_units"]
            row[f"separation_{name}"] = float(found.iloc[0]) if len(found) else math.nan
        order = own[own["kind"] == "order"]
        before = order[order["degradation"].isna()].set_index("set")["distance"]
        for name in degradations:
            taus = []
            for _, after in order[order["degradation"] == name].groupby("strength"):
                after = after.set_index("set")["distance"]
                common = [s for s in before.index if s in after.index]
                taus.append(_kendall([before[s] for s in common], [after[s] for s in common]))
            row[f"rank_stability_{name}"] = float(np.nanmean(taus)) if np.isfinite(taus).any() else math.nan
        row["interval_width"] = float(graded["interval_width"].median()) if len(graded) else math.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    sensitivity = [f"sensitivity_{d}" for d in degradations if d != NUISANCE]
    if sensitivity:  # rank by the mean rank of sensitivity over the degradations (brightness is a nuisance)
        table["sensitivity_rank"] = table[sensitivity].rank(ascending=False).mean(axis=1)
        table = table.sort_values("sensitivity_rank", kind="stable").reset_index(drop=True)
    return table


def recommendation(table: pd.DataFrame, reference: str, degradations: list[str], sets: list[str]) -> str:
    """The audit in words: one ranked line per extractor × value, the first naming what it is best at."""
    graded_names = ", ".join(d for d in degradations if d != NUISANCE)
    lines = [f"For the images of {reference}, ranked by sensitivity to {graded_names}:"]
    for i, row in enumerate(table.itertuples(index=False), start=1):
        values = row._asdict()
        notes = []
        graded = [d for d in degradations if d != NUISANCE and math.isfinite(values.get(f"sensitivity_{d}", math.nan))]
        if graded:
            best = max(graded, key=lambda d: values[f"sensitivity_{d}"] / _scale(table, d))
            if values[f"sensitivity_{best}"] > 0:
                notes.append(
                    f"most sensitive to {best} ({values[f'sensitivity_{best}']:.3g} floor units per "
                    f"{DEGRADATIONS[best].per})"
                )
            else:
                notes.append(f"does not grow with {', '.join(graded)}")
            steady = [d for d in graded if values.get(f"monotonicity_{d}", math.nan) >= 0.8]
            if steady:
                notes.append(f"monotone under {', '.join(steady)}")
            blind = [d for d in graded if not values.get(f"monotonicity_{d}", math.nan) > 0.5]
            if blind:
                notes.append(f"not monotone under {', '.join(blind)}")
        nuisance = values.get(f"nuisance_{NUISANCE}", math.nan)
        if math.isfinite(nuisance):
            verdict = "stable under" if nuisance < STABLE_FLOOR_UNITS else "moved by"
            notes.append(f"{verdict} brightness ±30 % ({nuisance:.3g} floor units)")
        separations = [(s, values.get(f"separation_{s}", math.nan)) for s in sets]
        separations = [(s, v) for s, v in separations if math.isfinite(v)]
        if separations:
            notes.append("separates " + ", ".join(f"{s} by {v:.3g}" for s, v in separations) + " floor units")
        lines.append(f"{i}. {row.extractor} × {row.metric}: " + "; ".join(notes or ["no graded cells"]))
    return "\n".join(lines)


def _scale(table: pd.DataFrame, degradation: str) -> float:
    """The largest |sensitivity| to ``degradation`` in the table (to compare a row's degradations fairly)."""
    biggest = table[f"sensitivity_{degradation}"].abs().max()
    return float(biggest) if biggest and math.isfinite(biggest) else 1.0


PROPERTIES = {
    "sensitivity": "floor units per unit of degradation",
    "monotonicity": "Spearman rho of distance vs strength",
    "separation": "floor units",
    "rank_stability": "Kendall tau of the sets' order",
}


def property_plots(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """One figure per property: a panel per degradation or set (each its own scale: a px and a JPEG quality
    point are not one unit), a bar per extractor × value."""
    written = []
    labels = [f"{r.extractor} × {r.metric}" for r in table.itertuples(index=False)]
    colours = [f"C{i % 10}" for i in range(len(labels))]
    units = {**PROPERTIES, "nuisance": "floor units at brightness ±30 %", "interval": "relative width"}
    for prop, unit in units.items():
        columns = [c for c in table.columns if c.startswith(prop + "_") and c != "sensitivity_rank"]
        if not columns or table[columns].isna().all().all():
            continue
        fig = plots._figure(max(4.0, 2.6 * len(columns)), 3.6)
        fig.suptitle(f"dsim audit: {prop.replace('_', ' ')} ({unit})")
        for k, column in enumerate(columns):
            ax = fig.add_subplot(1, len(columns), k + 1)
            heights = np.nan_to_num(table[column].to_numpy(float))
            ax.bar(range(len(labels)), heights, color=colours)
            ax.set_title(column.removeprefix(prop + "_") or prop, fontsize=9)
            ax.set_xticks([])
            ax.axhline(0, color="black", linewidth=0.6)
            ax.grid(alpha=0.3, axis="y")
        handles = [plots.bar_handle(colour) for colour in colours]
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=7)
        fig.get_layout_engine().set(rect=(0, 0.1, 1, 0.9))
        written.append(plots._save(fig, out_dir / f"{prop}.png"))
    return written


def write(table: pd.DataFrame, cells: pd.DataFrame, text: str, out_dir: Path) -> list[Path]:
    """``audit.csv``, ``audit_cells.csv``, ``recommendation.txt`` and the property plots, in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / AUDIT_CSV, table.to_csv(index=False))
    atomic_write_text(out_dir / "audit_cells.csv", cells.to_csv(index=False))
    atomic_write_text(out_dir / RECOMMENDATION_FILE, text + "\n")
    return [
        out_dir / AUDIT_CSV,
        out_dir / "audit_cells.csv",
        out_dir / RECOMMENDATION_FILE,
        *property_plots(table, out_dir),
    ]
