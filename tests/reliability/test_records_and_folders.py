"""Reliability of the records and the job folders: every number in its own place, none lost, none twice.

- two single cells started in the same second get job folders and MLflow runs of their own; an explicit
  ``hydra.run.dir`` that a running cell holds is a one-line error;
- the report of a rerun sweep holds every cell of it, reused or not, and counts each value once;
- only a run FINISHED in the cell's own store is reused, never a record waiting for another store;
- a ``kill -9`` while a cell logs leaves its record queued, and ``dsim sync`` logs it exactly once;
  ``dsim sync`` without folders finds a record kept only beside its job folder (the store folder was full);
- a failing sweep cell's error is printed once.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import textwrap
import time
from pathlib import Path

import pytest
from filelock import FileLock
from mlflow.tracking import MlflowClient

from dsim_testing import one_line_error, run_dsim, start_dsim, tracking_uri, write_crops

pytestmark = pytest.mark.slow

N = 40  # images per set: more than one batch of 16


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sets")
    write_crops(root / "a", N, seed=31, size=64)
    write_crops(root / "b", N, seed=32, size=64)
    return root


@pytest.fixture()
def work(tmp_path, sets) -> Path:
    """A working folder with the sets as ``a`` and ``b``; its store is the default ``mlruns/``."""
    folder = tmp_path / "work"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / name).symlink_to(sets / name)
    return folder


def cell(*extra: str) -> list[str]:
    """A pixels cell of ``a`` against ``b`` (``pair.candidate`` unless ``extra`` sets it)."""
    args = ["extractor=pixels", "pair.reference=a", "progress=false", "device=cpu", "batch_size=16", *extra]
    return args if any(a.startswith("pair.candidate=") for a in extra) else [*args, "pair.candidate=b"]


def cell_runs(work: Path, uri: str | None = None) -> list:
    """The store's cell runs (sweep parents left out)."""
    client = MlflowClient(tracking_uri=uri or tracking_uri(work))
    experiment = client.get_experiment_by_name("dsim")
    found = client.search_runs([experiment.experiment_id], max_results=1000) if experiment else []
    return [r for r in found if r.data.tags.get("dsim.kind") != "sweep"]


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def busy_store(work: Path) -> FileLock:
    """The lock dsim takes around every call to the SQLite store: while the test holds it, the store is busy."""
    (work / "mlruns").mkdir(exist_ok=True)
    return FileLock(str(work / "mlruns" / "mlflow.db.lock"))


def frozen_clock(tmp: Path) -> dict:
    """The environment of a dsim whose Hydra clock (``${now:...}``, which names the default job folder) stands
    at one second: two cells started in the same second, made certain."""
    folder = tmp / "clock"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(textwrap.dedent("""
        import datetime

        import hydra.core.utils


        class _Frozen(datetime.datetime):
            @classmethod
            def now(cls, tz=None):
                return datetime.datetime(2031, 1, 2, 3, 4, 5)


        hydra.core.utils.datetime = _Frozen  # what Hydra's ${now:...} resolver reads, nothing else
    """))
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}


def kill_tree(pid: int) -> None:
    """``kill -9`` a process and its descendants (a cell's store helper, decode workers) at once."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            todo += [int(c) for c in children.read_text().split()]
    for member in tree:
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass


def report_rows(work: Path, *args: str) -> list[dict]:
    """``dsim report ARGS``'s values (``report_runs.csv``: pair, extractor, metric, value, run_id, ...)."""
    out = work / f"report{len(list(work.glob('report*')))}"
    run_dsim("report", *args, "--out", str(out), cwd=work)
    with open(out / "report_runs.csv", newline="") as handle:
        return sorted(csv.DictReader(handle), key=lambda row: (row["pair"], row["extractor"], row["metric"]))


# ---------------------------------------------------------------------------------------------------
# job folders


def test_two_single_cells_started_in_the_same_second_get_folders_and_runs_of_their_own(work, tmp_path):
    """``for m in kid_poly cmmd; do dsim metric=$m & done``: two job folders, each with its own record, and two
    MLflow runs, each carrying its own cell's record (not the other's)."""
    env = frozen_clock(tmp_path)
    procs = {metric: start_dsim(*cell(f"metric={metric}"), cwd=work, env=env) for metric in ("kid_poly", "cmmd")}
    outputs = {metric: proc.communicate(timeout=300) for metric, proc in procs.items()}
    assert [p.returncode for p in procs.values()] == [0, 0], outputs
    day = work / "outputs" / "2031-01-02"
    assert sorted(p.name for p in day.iterdir()) == ["03-04-05", "03-04-05-2"]
    records = {}
    for folder in day.iterdir():
        record = json.loads((folder / "result.json").read_text())
        records[record["metric"]] = (folder, record)
    assert sorted(records) == ["cmmd", "kid_poly"]
    for metric, (folder, record) in records.items():
        assert f"record: {folder / 'result.json'}" in outputs[metric][0]
        assert record["n_reference"] == record["n_candidate"] == N and record["tracking"] == "logged"
    runs = cell_runs(work)
    assert sorted(r.data.tags["dsim.metric"] for r in runs) == ["cmmd", "kid_poly"]
    client = MlflowClient(tracking_uri=tracking_uri(work))
    for run in runs:
        metric = run.data.tags["dsim.metric"]
        folder, record = records[metric]
        assert run.info.run_id == record["mlflow_run_id"]
        assert run.data.metrics[metric] == pytest.approx(record["values"][metric])
        (tmp_path / run.info.run_id).mkdir()
        logged = json.loads(Path(client.download_artifacts(run.info.run_id, "result.json",
                                                           str(tmp_path / run.info.run_id))).read_text())
        assert logged["metric"] == metric and logged["values"] == record["values"]


def test_an_explicit_job_folder_in_use_by_a_running_cell_is_a_one_line_error(work):
    """A cell holds its ``hydra.run.dir`` while it runs (here: waiting for a busy store); a second cell given the
    same folder stops at once with one line, and the first one's record is whole. Once it is done, the folder
    can be used again."""
    shared = work / "shared"
    with busy_store(work):
        first = start_dsim(*cell("metric=fid", "hydra.run.dir=shared"), cwd=work)
        wait_for(lambda: (shared / ".dsim_job.lock").exists() or first.poll() is not None, timeout=60)
        second = run_dsim(*cell("metric=cmmd", "hydra.run.dir=shared", "tracking.retry_s=2"), cwd=work, check=False)
        assert first.poll() is None  # still running: the store is busy
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    line = one_line_error(second)
    assert f"hydra.run.dir {shared} is in use by another running cell" in line and "leave it unset" in line
    record = json.loads((shared / "result.json").read_text())
    assert record["metric"] == "fid" and record["tracking"] == "logged"
    assert [r.data.tags["dsim.metric"] for r in cell_runs(work)] == ["fid"]
    run_dsim(*cell("metric=cmmd", "hydra.run.dir=shared"), cwd=work)  # a finished cell's folder: reused as before
    assert json.loads((shared / "result.json").read_text())["metric"] == "cmmd"


# ---------------------------------------------------------------------------------------------------
# reuse and the report


def test_the_report_of_a_rerun_sweep_holds_every_cell_once(work):
    """A 2x1 sweep, then the same sweep again (both cells reused): ``dsim report --sweep latest`` lists every
    cell's value, equal to the first sweep's; the report across sweeps counts each value once."""
    grid = ("-m", *cell("metric=fid,kid_poly"))
    run_dsim(*grid, "hydra.sweep.dir=sweep1", cwd=work)
    rerun = run_dsim(*grid, "hydra.sweep.dir=sweep2", cwd=work)
    assert sum("(reused: same cell key" in line for line in rerun.stdout.splitlines()) == 2
    values = {name: value for path in (work / "sweep1").rglob("result.json")
              for name, value in json.loads(path.read_text())["values"].items()}
    latest, every = report_rows(work, "--sweep", "latest"), report_rows(work)
    for rows in (latest, every):
        assert [(row["pair"], row["extractor"], row["metric"]) for row in rows] == [
            ("a_vs_b", "pixels", "fid"), ("a_vs_b", "pixels", "kid_poly")]
        for row in rows:
            assert float(row["value"]) == pytest.approx(values[row["metric"]], rel=1e-12)
    assert {row["run_id"] for row in latest}.isdisjoint(row["run_id"] for row in every)  # the sweep's own runs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_record_pending_for_another_store_is_not_reused(work):
    """A cell whose record waits for a tracking server that is down, then the same cell on the local store: it
    is computed and logged there (never "reused the finished run None"); the other record still waits."""
    elsewhere = f"http://127.0.0.1:{_free_port()}"
    first = run_dsim(*cell("metric=fid", f"tracking.uri={elsewhere}", "tracking.retry_s=1", "hydra.run.dir=out1"),
                     cwd=work)
    assert "not logged to MLflow" in first.stderr
    (waiting,) = (work / "mlruns" / "pending").glob("cell-*.json")
    second = run_dsim(*cell("metric=fid", "hydra.run.dir=out2"), cwd=work)
    assert "reused" not in second.stdout
    record = json.loads((work / "out2" / "result.json").read_text())
    assert record["reused"] is False and record["tracking"] == "logged"
    (run,) = cell_runs(work)
    assert run.info.run_id == record["mlflow_run_id"] and run.info.status == "FINISHED"
    assert json.loads(waiting.read_text())["uri"] == elsewhere


# ---------------------------------------------------------------------------------------------------
# the pending queue


def test_kill_9_while_logging_leaves_the_record_queued_and_sync_logs_it_once(work):
    """The store is busy when the cell logs; ``kill -9`` then (the cell and its store helper): ``result.json``
    says ``pending`` and the record is queued; ``dsim sync`` logs it once, and a second sync finds nothing."""
    result = work / "out" / "result.json"
    with busy_store(work):
        proc = start_dsim(*cell("metric=fid", "force=true", "hydra.run.dir=out"), cwd=work)
        assert wait_for(lambda: result.exists() or proc.poll() is not None, timeout=120)
        time.sleep(1.5)  # result.json is written just before the record is logged: now it waits for the store
        assert proc.poll() is None
        kill_tree(proc.pid)
        proc.wait(30)
    record = json.loads(result.read_text())
    assert record["tracking"] == "pending" and record["mlflow_run_id"] is None
    assert len(list((work / "mlruns" / "pending").glob("cell-*.json"))) == 1
    assert (work / "out" / ".dsim_pending_run.json").exists()
    synced = run_dsim("sync", cwd=work)
    assert "1 of 1 pending record(s) logged" in synced.stdout, synced.stdout
    (run,) = cell_runs(work)
    record = json.loads(result.read_text())
    assert record["tracking"] == "logged" and record["mlflow_run_id"] == run.info.run_id
    assert run.info.status == "FINISHED" and run.data.metrics["fid"] == pytest.approx(record["values"]["fid"])
    assert not list((work / "mlruns" / "pending").glob("*.json")) and not (work / "out" / ".dsim_pending_run.json").exists()
    again = run_dsim("sync", cwd=work)
    assert "nothing to sync" in again.stdout and len(cell_runs(work)) == 1


def test_dsim_sync_without_folders_finds_a_record_kept_only_beside_its_job_folder(work):
    """Neither the store nor its queue takes a file (as on a full disk): the record waits beside the result in
    the default job folder only; once there is room, a plain ``dsim sync`` finds and logs it."""
    uri = f"sqlite:///{work / 'store' / 'mlflow.db'}"
    (work / "store").write_text("")  # the store's folder cannot be made
    (work / "mlruns").mkdir()
    (work / "mlruns" / "pending").write_text("")  # nor the pending queue
    done = run_dsim(*cell("metric=fid", f"tracking.uri={uri}"), cwd=work)
    (copy,) = (work / "outputs").rglob(".dsim_pending_run.json")
    assert "not logged to MLflow" in done.stderr and str(copy) in done.stderr
    (work / "store").unlink()
    (work / "mlruns" / "pending").unlink()
    synced = run_dsim("sync", cwd=work)
    assert "1 of 1 pending record(s) logged" in synced.stdout, synced.stdout
    (run,) = cell_runs(work, uri)
    record = json.loads((copy.parent / "result.json").read_text())
    assert record["tracking"] == "logged" and record["mlflow_run_id"] == run.info.run_id and not copy.exists()


def test_dsim_sync_of_a_missing_folder_is_a_one_line_error(work):
    line = one_line_error(run_dsim("sync", str(work / "no" / "such" / "dir"), cwd=work, check=False))
    assert f"no such folder: {work / 'no' / 'such' / 'dir'}" in line


# ---------------------------------------------------------------------------------------------------
# messages


def test_a_failing_sweep_cells_error_is_printed_once(work):
    done = run_dsim("-m", *cell("metric=fid", "pair.candidate=b,missing"), "hydra.sweep.dir=sweep", cwd=work,
                    check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    text = done.stdout + done.stderr
    assert text.count("dataset path does not exist") == 1, text
    (line,) = [line for line in done.stderr.splitlines() if "dataset path does not exist" in line]
    assert line.startswith("dsim: error: cell 1 (") and "pair.candidate=missing" in line
    assert "1 of 2 cells failed" in done.stderr
