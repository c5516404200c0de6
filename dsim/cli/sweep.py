"""Hydra callback that gives a multirun one MLflow parent run, its results table and its sweep analyses.

- Start: the sweep folder is taken under a lock (two sweeps never share one: the default folder gets a
  ``-2`` suffix when its second is taken, an explicit ``hydra.sweep.dir`` in use is a one-line error),
  and the parent run is created; its id is written into the sweep folder, where every cell (in this
  process or in a launcher's worker) finds it and attaches itself as a child.
- End: every cell's ``result.json`` becomes ``results.csv`` and the printed table; failed cells
  (``failure.json``) are listed one line each; the sweep analyses are logged on the parent, which is
  marked FINISHED, or FAILED when a cell failed; the command then exits non-zero. A store that is
  unavailable at either end delays the parent's record (``dsim sync``), never the results.
- Interrupted (Ctrl-C, SIGTERM): :func:`abort` marks the parent KILLED.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from filelock import FileLock
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from dsim.errors import Abort, DsimError
from dsim.records import read_embed_records, read_failures, read_study_records
from dsim.tracking.mlflow_store import DEFAULT_RETRY_S, StoreUnavailable, resolve_uri, runs_page, ui_command
from dsim.tracking.queue import PARENT_RUN_FILE, RunPlan, open_store, parent_run_id, submit, sync
from dsim.util.fileio import atomic_write_text, lock_dir, unlock_dir

RESULTS_CSV = "results.csv"
EMBED_CSV = "embed.csv"
LOCK_FILE = ".dsim_sweep.lock"
SWEEP_TAGS = {"dsim.kind": "sweep"}


class _State:
    """The sweep this process is running (the callback's state, for :func:`abort` and the exit code)."""

    lock: FileLock | None = None
    sweep_dir: Path | None = None
    config: DictConfig | None = None
    failed: int = 0


STATE = _State()


def _store(config: DictConfig) -> dict:
    return dict(
        uri=resolve_uri(config.tracking.uri, config.tracking.store_dir),
        experiment=config.tracking.experiment,
        store_dir=config.tracking.store_dir,
        retry_s=float(config.tracking.get("retry_s", DEFAULT_RETRY_S)),
    )


class SweepRecord(Callback):
    """``on_multirun_start``: lock the folder, open the parent run; ``on_multirun_end``: table, CSV, parent."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            self._start(config)
        except DsimError as error:  # Hydra would make it a warning and run the sweep anyway
            raise Abort(error) from None

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        try:
            self._end(config)
        except DsimError as error:
            abort("FAILED")
            raise Abort(error) from None

    def _start(self, config: DictConfig) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        lock = lock_dir(
            sweep_dir,
            LOCK_FILE,
            f"sweep folder {sweep_dir} is in use by another running sweep: give "
            "this one its own hydra.sweep.dir (or leave it unset: each sweep then gets a new folder)",
        )
        STATE.lock, STATE.sweep_dir, STATE.config, STATE.failed = lock, sweep_dir, config, 0
        (sweep_dir / PARENT_RUN_FILE).unlink(missing_ok=True)  # a rerun into the same folder: a new parent
        store = _store(config)
        overrides = " ".join(config.hydra.overrides.task) or "(none)"
        try:
            tracker = open_store(
                store["uri"], store["experiment"], store_dir=store["store_dir"], retry_s=store["retry_s"]
            )
            run_id = tracker.start_run(
                f"sweep {sweep_dir.name}", tags={**SWEEP_TAGS, "dsim.sweep_dir": str(sweep_dir.resolve())}
            )
            tracker.log(run_id, params={"overrides": overrides})
            atomic_write_text(sweep_dir / PARENT_RUN_FILE, run_id + "\n")
        except StoreUnavailable as error:
            warnings.warn(
                f"no parent run yet ({error}); the cells' records wait for it in the pending queue "
                "(`dsim sync` once the store is back)",
                stacklevel=2,
            )

    def _end(self, config: DictConfig) -> None:
        import pandas as pd

        from dsim import results
        from dsim.analysis.perturbation import perturbation_analysis
        from dsim.analysis.sweep import sweep_analysis
        from dsim.analysis.transfer import sweep_transfer_analysis
        from dsim.analysis.visual import sweep_visual_analysis

        sweep_dir = Path(config.hydra.sweep.dir)
        records = results.collect(sweep_dir)
        shards = read_embed_records(sweep_dir)
        studies = read_study_records(sweep_dir)
        failures = read_failures(sweep_dir)
        frame = results.to_frame(records)
        atomic_write_text(sweep_dir / RESULTS_CSV, frame.to_csv(index=False))
        metrics = {"n_cells": len(records), "n_failed": len(failures)}
        artifacts = [(str(sweep_dir / RESULTS_CSV), None)]
        if shards:  # task=embed: what each shard embedded
            table = pd.DataFrame(
                [{k: s[k] for k in ("name", "extractor", "shard", "shards", "images", "embedded")} for s in shards]
            ).sort_values(["name", "extractor", "shard"])
            atomic_write_text(sweep_dir / EMBED_CSV, table.to_csv(index=False))
            artifacts.append((str(sweep_dir / EMBED_CSV), None))
            metrics.update(
                n_shards=len(shards), n_images=int(table["images"].sum()), n_embedded=int(table["embedded"].sum())
            )
        if studies:  # task=transfer_study: each study's files are its own run's; the parent counts them
            metrics["n_studies"] = len(studies)
        for produce in (
            lambda: sweep_analysis(records, sweep_dir, cache_dir=config.cache_dir),
            lambda: sweep_visual_analysis(sweep_dir, _analysis(config)),
            lambda: sweep_transfer_analysis(records, sweep_dir, _analysis(config)),
            lambda: perturbation_analysis(records, sweep_dir),
        ):
            found, files = produce()
            metrics.update(found)
            artifacts += [(str(path), folder) for path, folder in files]
        store = _store(config)
        _finish_parent(
            sweep_dir, config, store, metrics=metrics, artifacts=artifacts, status="FAILED" if failures else "FINISHED"
        )
        if config.results_file:
            results.write_results_file(Path(config.results_file), records)
        if shards:
            print(f"\n{table.to_string(index=False)}\n")
            print(
                f"embedding shards: {sweep_dir / EMBED_CSV} ({metrics['n_embedded']} of {metrics['n_images']} "
                "images embedded now, the rest were in the store)"
            )
        if studies:
            from dsim.cli.study_task import format_study

            for study in studies:
                print(f"\n{format_study(study)}\nstudy: {study['folder']}")
            print()
        if records or not (shards or studies):
            print(f"\n{results.format_table(frame)}\n")
            print(f"results: {sweep_dir / RESULTS_CSV}")
            note = results.caveats_summary(records)
            if note and not config.get("verbose"):
                print(note)
        print(f"MLflow UI: {ui_command(store['uri'])}   (then open {_sweep_page(config, store, records)})")
        for failure in failures:
            print(
                f"dsim: error: cell {failure.get('job', '?')} ({failure.get('overrides', '')}) failed: "
                f"{failure.get('error', '?')}",
                file=sys.stderr,
            )
        if failures:
            print(
                f"dsim: error: {len(failures)} of {len(failures) + len(records)} cells failed; the others are "
                f"recorded (rerunning the sweep computes only the missing cells)",
                file=sys.stderr,
            )
        STATE.failed = len(failures)
        _release()


def _finish_parent(
    sweep_dir: Path, config: DictConfig, store: dict, *, metrics: dict, artifacts: list, status: str
) -> None:
    """Complete the parent run (or create it, when the store was unavailable at the start)."""
    run_id = parent_run_id(sweep_dir)
    overrides = " ".join(str(o) for o in OmegaConf.to_container(config.hydra.overrides.task) or []) or "(none)"
    plan = RunPlan(
        name=f"sweep {sweep_dir.name}",
        uri=store["uri"],
        experiment=store["experiment"],
        tags={**SWEEP_TAGS, "dsim.sweep_dir": str(sweep_dir.resolve())},
        params={} if run_id else {"overrides": overrides},
        metrics=metrics,
        artifacts=artifacts,
        sweep_dir=str(sweep_dir),
        status=status,
        kind="sweep",
        run_id=run_id,
    )
    if submit(plan, store_dir=store["store_dir"], retry_s=store["retry_s"]) and run_id is None:
        sync(store["store_dir"], uri=store["uri"], retry_s=min(store["retry_s"], 5.0))  # its waiting children


def _sweep_page(config: DictConfig, store: dict, records: list[dict]) -> str:
    """The runs page of this sweep's cells with the keys it varied as columns (the experiment's page when the
    store cannot take the view now: it is only a convenience)."""
    from dsim import results
    from dsim.records import CellRecord
    from dsim.tracking import ui

    run_id = parent_run_id(Path(config.hydra.sweep.dir))
    if run_id is None:
        return runs_page(store["uri"], store["experiment"])
    cells = [CellRecord.from_json(record) for record in records]
    configs = [cell.config or {} for cell in cells]
    varied = ui.swept_params(_swept_keys(config), set().union(*configs))
    varied += results.variant_keys(configs, [(c.extractor, c.metric, c.pair) for c in cells])
    key = ui.sweep_view_key(run_id)
    try:
        tracker = open_store(store["uri"], store["experiment"], store_dir=store["store_dir"], retry_s=5.0)
        tracker.set_view(key, ui.sweep_view(run_id, varied))
    except Exception:  # noqa: BLE001 - the store is busy or away: the experiment's own view still works
        return runs_page(store["uri"], store["experiment"])
    return runs_page(store["uri"], store["experiment"], share_key=key)


def _swept_keys(config: DictConfig) -> list[str]:
    """The keys and groups the sweep's command line gives several values (comma lists, ranges)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = [str(o) for o in OmegaConf.to_container(config.hydra.overrides.task) or []]
    parsed = OverridesParser.create().parse_overrides(overrides)
    return [override.key_or_group for override in parsed if override.is_sweep_override()]


def abort(status: str = "KILLED") -> None:
    """Mark the running sweep's parent run ``status`` (an interrupted sweep); best effort, then unlock."""
    if STATE.sweep_dir is None:
        return
    run_id = parent_run_id(STATE.sweep_dir)
    if run_id and STATE.config is not None:
        store = _store(STATE.config)
        try:
            open_store(
                store["uri"], store["experiment"], store_dir=store["store_dir"], retry_s=min(store["retry_s"], 10.0)
            ).finish(run_id, status=status)
        except Exception:  # noqa: BLE001 - the next dsim command reaps it (its process is gone)
            pass
    _release()


def _release() -> None:
    if STATE.lock is not None:
        unlock_dir(STATE.lock)
    STATE.lock, STATE.sweep_dir, STATE.config = None, None, None


def _analysis(config: DictConfig) -> dict:
    """The sweep config's ``analysis`` group as a plain dict (analyses never see omegaconf)."""
    node = config.get("analysis")
    return {"analysis": OmegaConf.to_container(node, resolve=True) if node is not None else None}
