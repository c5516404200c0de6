"""The reaper (Tracker.reap_dead_runs) marks KILLED only runs that are still RUNNING once their process is
known dead — never one its process finished between the reaper's search and its check (a parallel grid's
worker finishing a run and exiting; seen as a KILLED cell in tests/test_team_server.py's grid under load)."""

from __future__ import annotations

import dsim.tracking.mlflow_store as mlflow_store
from dsim.tracking.mlflow_store import Tracker, resolve_uri


def _tracker(tmp_path) -> Tracker:
    return Tracker(resolve_uri(None, tmp_path / "mlruns"), "reaper", retry_s=5)


def test_a_run_its_process_finished_before_dying_stays_finished(tmp_path, monkeypatch):
    tracker = _tracker(tmp_path)
    run_id = tracker.start_run("cell")

    def finished_then_gone(process: str) -> bool:
        tracker.finish(run_id)  # the owner finishes its run after the reaper's search, then exits
        return False

    monkeypatch.setattr(mlflow_store, "process_alive", finished_then_gone)
    assert tracker.reap_dead_runs() == []
    assert tracker.get_run(run_id).info.status == "FINISHED"


def test_a_run_left_running_by_a_dead_process_is_killed(tmp_path, monkeypatch):
    tracker = _tracker(tmp_path)
    run_id = tracker.start_run("cell")
    monkeypatch.setattr(mlflow_store, "process_alive", lambda process: False)
    assert tracker.reap_dead_runs() == [run_id]
    assert tracker.get_run(run_id).info.status == "KILLED"
