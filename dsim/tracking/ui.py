"""How dsim's store looks in the MLflow UI (3.x): an experiment that opens on its runs table, with the
columns a grid needs already picked.

MLflow 3 opens an experiment by its kind (the ``mlflow.experimentKind`` tag): without one it guesses, and a
fresh store lands on the GenAI overview (traces, no runs). dsim's experiments are
``custom_model_development``. The runs table's columns come from a *shared view* (the experiment tag
``mlflow.sharedViewState.<key>``, a JSON of the page's state, opened by ``?viewStateShareKey=<key>``, as the
UI's own "Share" button writes it): dsim's names each cell's extractor, metric and pair and its headline
``value`` (the one number of a run, whatever the metric). Each sweep adds a view of its own cells (its parent
run's children) with the keys it varied as columns: :func:`sweep_view`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

KIND_TAG = "mlflow.experimentKind"
KIND = "custom_model_development"  # MLflow 3's "machine learning" experiment: the runs table first
NOTE_TAG = "mlflow.note.content"  # an experiment's or run's description, shown in the UI
VIEW_TAG = "mlflow.sharedViewState."
#: the shared view of the whole experiment
VIEW_KEY = "dsim"
#: the run metric that holds a cell's headline value (also in the results table's ``value`` column)
HEADLINE_METRIC = "value"
#: the params every cell has that tell cells apart
CELL_PARAMS = ("extractor.name", "metric.name", "pair.name")

EXPERIMENT_NOTE = (
    "dsim grid cells: one run per extractor x metric x dataset pair (a sweep is a parent run with its cells as "
    "children). `value` is each run's headline number (see the run's description for its direction); params "
    "are the cell's config, tags its lineage (dataset fingerprints, DVC md5, extractor identity, git commit)."
)


def column(section: str, key: str) -> str:
    """A runs-table column as the UI names it: ``metrics.`value```, ``params.`extractor.name```."""
    return f"{section}.`{key}`"


def view_state(params: Iterable[str] = CELL_PARAMS, search_filter: str = "") -> str:
    """The JSON of a shared view: the headline value, then these params, newest runs first."""
    columns = [column("metrics", HEADLINE_METRIC), *(column("params", p) for p in dict.fromkeys(params))]
    state = {"selectedColumns": columns, "orderByKey": "attributes.start_time", "orderByAsc": False}
    if search_filter:
        state["searchFilter"] = search_filter
    return json.dumps(state)


def swept_params(swept_keys: Iterable[str], logged: Iterable[str]) -> list[str]:
    """The params of the keys a sweep varied, as the cells logged them: ``perturb.strength`` stays, a group
    (``perturb`` of ``perturb=blur,noise``) becomes its ``perturb.name``; keys no cell logged are left out."""
    logged = set(logged)
    found = []
    for key in swept_keys:
        name = key if key in logged else f"{key}.name"
        if name in logged:
            found.append(name)
    return found


def sweep_view_key(parent_run_id: str) -> str:
    """The shared-view key of one sweep's cells."""
    return f"sweep-{parent_run_id[:12]}"


def sweep_view(parent_run_id: str, params: Iterable[str]) -> str:
    """The JSON of a sweep's view: its cells only (the parent run's children), the grid's columns and
    ``params`` (the keys it varied)."""
    return view_state((*CELL_PARAMS, *params), search_filter=f"tags.`mlflow.parentRunId` = '{parent_run_id}'")


def experiment_tags() -> dict[str, str]:
    """The tags dsim sets on an experiment it creates (or finds without them)."""
    return {KIND_TAG: KIND, NOTE_TAG: EXPERIMENT_NOTE, VIEW_TAG + VIEW_KEY: view_state()}


def page_url(base: str, experiment_id: str, share_key: str = VIEW_KEY) -> str:
    """The runs table of an experiment in dsim's view (``base``: where ``mlflow ui`` serves). MLflow 3.17's
    experiment page lands on its GenAI overview whatever the kind, so dsim links the runs tab itself."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?viewStateShareKey={share_key}"


def run_note(extractor: str, metric: str, pair: str, headline: str | None, value, higher_is_better: bool | None):
    """A run's description: what the cell compared and its headline number with its direction."""
    text = f"{metric} between the two sides of pair {pair}, through extractor {extractor}."
    if headline is not None and value is not None:
        better = (
            "" if higher_is_better is None else (" (higher is better)" if higher_is_better else " (lower is better)")
        )
        text += f" Headline: {headline} = {value:.6g}{better}; it is this run's `{HEADLINE_METRIC}` metric."
    return text
