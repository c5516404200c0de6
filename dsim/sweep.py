"""Hydra callback that gives a multirun one MLflow parent run and prints the results table at the end.

The parent run id is written into the sweep directory, where every cell (in this process or in a
launcher's worker process) finds it and attaches itself as a child.
"""

from __future__ import annotations

from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from dsim import results
from dsim.analysis.sweep import log_sweep_analysis
from dsim.analysis.visual import log_sweep_views
from dsim.cache import atomic_write_text
from dsim.tracking import Tracker, resolve_uri, ui_command

PARENT_RUN_FILE = ".dsim_parent_run_id"
RESULTS_CSV = "results.csv"


def parent_run_id(sweep_dir: str | Path) -> str | None:
    """The sweep's parent run id, if this sweep has one."""
    file = Path(sweep_dir) / PARENT_RUN_FILE
    return file.read_text().strip() if file.exists() else None


def _tracker(config: DictConfig) -> Tracker:
    return Tracker(resolve_uri(config.tracking.uri, config.tracking.store_dir), experiment=config.tracking.experiment)


class SweepRecord(Callback):
    """``on_multirun_start``: open the parent run; ``on_multirun_end``: table, CSV, close the parent."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        tracker = _tracker(config)
        run_id = tracker.start_run(f"sweep {sweep_dir.name}", tags={"dsim.sweep_dir": str(sweep_dir.resolve()),
                                                                     "dsim.kind": "sweep"})
        overrides = list(config.hydra.overrides.task)
        tracker.log(run_id, params={"overrides": " ".join(overrides) or "(none)"})
        atomic_write_text(sweep_dir / PARENT_RUN_FILE, run_id + "\n")

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        records = results.collect(sweep_dir)
        frame = results.to_frame(records)
        atomic_write_text(sweep_dir / RESULTS_CSV, frame.to_csv(index=False))
        tracker = _tracker(config)
        run_id = parent_run_id(sweep_dir)
        if run_id:
            tracker.log(run_id, metrics={"n_cells": len(records)})
            tracker.log_artifact(run_id, sweep_dir / RESULTS_CSV)
            log_sweep_analysis(tracker, run_id, records, sweep_dir, cache_dir=config.cache_dir)  # entropy, metric x metric
            log_sweep_views(tracker, run_id, sweep_dir, config)  # analysis=distance: I_dist violins across cells
            tracker.finish(run_id)
        if config.results_file:
            results.write_results_file(Path(config.results_file), records)
        print(f"\n{results.format_table(frame)}\n")
        print(f"results: {sweep_dir / RESULTS_CSV}")
        print(f"MLflow UI: {ui_command(tracker.uri)}   (then open http://127.0.0.1:5000)")
