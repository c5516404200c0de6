"""One grid cell: a metric on a dataset pair (through an extractor), recorded in ``result.json`` and MLflow.

``run_cell`` checks the config, finds both datasets, reuses a finished run of the same cell key or hands
the work to the runner for the metric's kind (``distribution``: two feature sets; ``paired``: image
pairs), then writes the record and logs the run.
"""

from dsim.cell.context import CellOutput, DatasetRef, SideSummary, pair_name, resolve_dataset
from dsim.cell.run import run_cell
from dsim.record import RESULT_FILE

__all__ = ["RESULT_FILE", "CellOutput", "DatasetRef", "SideSummary", "pair_name", "resolve_dataset", "run_cell"]
