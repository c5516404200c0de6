"""Reliability of sweeps and of the MLflow record at the sizes and concurrency where they break.

Sets larger than a batch with decode workers on, parallel launchers, two sweeps at once, a locked or
unreachable store, ``kill -9`` mid-sweep and mid-embedding, SIGTERM, a failing cell: each case checks
that nothing computed is lost, nothing is left RUNNING and a rerun does only the missing work.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from dsim_testing import run_dsim, start_dsim, stored_vectors, write_crops

pytestmark = pytest.mark.slow

BIG = 120  # images per set: several batches of 16, so decode workers start


@pytest.fixture(scope="module")
def big_sets(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("big")
    write_crops(root / "a", BIG, seed=11, size=64)
    write_crops(root / "b", BIG, seed=12, size=64)
    return root


@pytest.fixture()
def work(tmp_path, big_sets) -> Path:
    for name in ("a", "b"):
        (tmp_path / name).symlink_to(big_sets / name)
    return tmp_path


def runs(work: Path, store: str = "mlruns"):
    client = MlflowClient(tracking_uri=f"sqlite:///{work / store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("dsim")
    return client.search_runs([experiment.experiment_id], max_results=1000) if experiment else []


def cells(found):
    return [r for r in found if r.data.tags.get("dsim.kind") != "sweep"]


def parents(found):
    return [r for r in found if r.data.tags.get("dsim.kind") == "sweep"]


def records(sweep_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(sweep_dir.rglob("result.json"))]


GRID = ("extractor=pixels", "metric=fid,kid_poly", "pair.reference=a", "pair.candidate=a,b", "progress=false",
        "device=cpu", "batch_size=16", "num_workers=2")


@pytest.mark.parametrize("launcher", [["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], []],
                         ids=["joblib", "basic"])
def test_grid_from_a_cold_cache_with_decode_workers(work, launcher):
    """The crash users met: DataLoader workers inside joblib's workers, on sets larger than a batch."""
    done = run_dsim("-m", *launcher, *GRID, "hydra.sweep.dir=sweep", cwd=work)
    found = runs(work)
    assert len(cells(found)) == 4 and len(parents(found)) == 1
    assert all(r.info.status == "FINISHED" for r in found)
    assert all(r.data.tags["mlflow.parentRunId"] == parents(found)[0].info.run_id for r in cells(found))
    got = records(work / "sweep")
    assert {(r["metric"], r["pair"]) for r in got} == {(m, p) for m in ("fid", "kid_poly") for p in ("a_vs_a", "a_vs_b")}
    assert all(r["n_reference"] == r["n_candidate"] == BIG for r in got)
    assert "a_vs_b" in done.stdout and (work / "sweep" / "results.csv").exists()


def test_concurrent_sweeps_in_one_folder_get_their_own_folder_and_parent(work):
    """Two sweeps started in the same second: the default folder of the second gets a -2 suffix."""
    same_second = "hydra.sweep.dir=${dsim_unique_dir:multirun/fixed}"  # what the default does, minus the clock
    procs = [start_dsim("-m", "extractor=pixels", f"metric={metric}", "pair.reference=a", "pair.candidate=b",
                        "progress=false", same_second, cwd=work) for metric in ("fid", "cmmd")]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    folders = sorted(p.name for p in (work / "multirun").iterdir())
    assert folders == ["fixed", "fixed-2"]
    metrics = sorted(records(work / "multirun" / f)[0]["metric"] for f in folders)
    assert metrics == ["cmmd", "fid"] and all(len(records(work / "multirun" / f)) == 1 for f in folders)
    found = runs(work)
    assert len(parents(found)) == 2
    by_parent = {p.info.run_id: [c for c in cells(found) if c.data.tags["mlflow.parentRunId"] == p.info.run_id]
                 for p in parents(found)}
    assert sorted(len(v) for v in by_parent.values()) == [1, 1]
    for out, _ in outputs:  # each printed table holds its own cell only
        assert ("fid" in out) != ("cmmd" in out)


def test_an_explicit_sweep_folder_in_use_is_a_one_line_error(work):
    first = start_dsim("-m", "extractor=pixels", "metric=fid,kid_poly,cmmd", "pair.reference=a", "pair.candidate=a,b",
                       "progress=false", "hydra.sweep.dir=shared", cwd=work)
    lock = work / "shared" / ".dsim_sweep.lock"
    for _ in range(600):
        if (work / "shared" / ".dsim_parent_run_id").exists() or first.poll() is not None:
            break
        time.sleep(0.1)
    assert lock.exists()
    second = run_dsim("-m", "extractor=pixels", "metric=fid", "pair.reference=a", "pair.candidate=b",
                      "progress=false", "hydra.sweep.dir=shared", cwd=work, check=False)
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert second.returncode == 2 and "in use by another running sweep" in second.stderr
    assert "Traceback" not in second.stderr
    assert len(records(work / "shared")) == 6  # the first sweep's cells only, none overwritten


def _hold_sqlite_lock(db: Path, seconds: float, ready: threading.Event) -> threading.Thread:
    """Another process's exclusive lock on the store (as an open ``sqlite3`` shell or ``mlflow ui`` write)."""
    code = ("import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
            "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(float(sys.argv[2])); "
            "c.execute('COMMIT')")
    proc = subprocess.Popen([sys.executable, "-c", code, str(db), str(seconds)], stdout=subprocess.PIPE, text=True)

    def wait():
        proc.stdout.readline()
        ready.set()
        proc.wait()

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return thread


def _first_cell(work: Path, *extra: str, **kwargs):
    return run_dsim("extractor=pixels", "pair.reference=a", "pair.candidate=b", "progress=false", *extra,
                    cwd=work, **kwargs)


def test_a_briefly_locked_store_is_waited_for(work):
    _first_cell(work, "hydra.run.dir=out0")  # creates the store
    ready = threading.Event()
    holder = _hold_sqlite_lock(work / "mlruns" / "mlflow.db", 4.0, ready)
    assert ready.wait(30)
    started = time.monotonic()
    done = _first_cell(work, "metric=cmmd", "hydra.run.dir=out1", "tracking.retry_s=60")
    holder.join(30)
    assert "not logged" not in done.stderr and time.monotonic() - started >= 3.0
    record = json.loads((work / "out1" / "result.json").read_text())
    assert record["tracking"] == "logged" and record["mlflow_run_id"]
    assert {r.info.run_id for r in runs(work)} >= {record["mlflow_run_id"]}


def test_a_store_locked_past_retry_s_keeps_the_record_for_dsim_sync(work):
    _first_cell(work, "hydra.run.dir=out0")
    ready = threading.Event()
    holder = _hold_sqlite_lock(work / "mlruns" / "mlflow.db", 20.0, ready)
    assert ready.wait(30)
    done = _first_cell(work, "metric=cmmd", "hydra.run.dir=out1", "tracking.retry_s=3")
    warning = [line for line in done.stderr.splitlines() if "not logged to MLflow" in line]
    assert len(warning) == 1 and "database is locked" in warning[0] and "Traceback" not in done.stderr
    record = json.loads((work / "out1" / "result.json").read_text())
    assert record["tracking"] == "pending" and record["mlflow_run_id"] is None and record["values"]["cmmd"] > 0
    assert len(list((work / "mlruns" / "pending").glob("cell-*.json"))) == 1
    assert (work / "out1" / ".dsim_pending_run.json").exists()
    holder.join(60)
    synced = run_dsim("sync", cwd=work)
    assert "1 of 1 pending record(s) logged" in synced.stdout
    record = json.loads((work / "out1" / "result.json").read_text())
    assert record["tracking"] == "logged"
    (logged,) = [r for r in runs(work) if r.info.run_id == record["mlflow_run_id"]]
    assert logged.info.status == "FINISHED" and logged.data.metrics["cmmd"] == pytest.approx(record["values"]["cmmd"])
    assert not list((work / "mlruns" / "pending").glob("*.json")) and not (work / "out1" / ".dsim_pending_run.json").exists()
    again = run_dsim("sync", cwd=work)
    assert "nothing to sync" in again.stdout and len(cells(runs(work))) == 2  # logged once, never twice


def test_the_next_run_on_the_store_logs_what_was_pending(work):
    _first_cell(work, "hydra.run.dir=out0")
    ready = threading.Event()
    holder = _hold_sqlite_lock(work / "mlruns" / "mlflow.db", 15.0, ready)
    assert ready.wait(30)
    _first_cell(work, "metric=cmmd", "hydra.run.dir=out1", "tracking.retry_s=2")
    holder.join(60)
    _first_cell(work, "metric=kid_poly", "hydra.run.dir=out2")
    assert {r.data.tags["dsim.metric"] for r in cells(runs(work))} == {"fid", "cmmd", "kid_poly"}
    assert not list((work / "mlruns" / "pending").glob("*.json"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_tracking_server_delays_the_record_until_it_is_up(work):
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    done = _first_cell(work, f"tracking.uri={uri}", "tracking.retry_s=2", "hydra.run.dir=out")
    assert "not logged to MLflow" in done.stderr and "Traceback" not in done.stderr
    assert json.loads((work / "out" / "result.json").read_text())["tracking"] == "pending"
    server = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
                               "--port", str(port), "--backend-store-uri", f"sqlite:///{work / 'server.db'}",
                               "--default-artifact-root", str(work / "server-artifacts"), "--workers", "1"],
                              cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, timeout=120)
        synced = run_dsim("sync", cwd=work)
        assert "1 of 1 pending record(s) logged" in synced.stdout, synced.stdout + synced.stderr
        client = MlflowClient(tracking_uri=uri)
        (run,) = client.search_runs([client.get_experiment_by_name("dsim").experiment_id])
        assert run.info.status == "FINISHED" and "fid" in run.data.metrics
    finally:
        server.terminate()
        server.wait(30)


def _wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"nothing listens on {port} after {timeout} s")


SLOW_GRID = ("extractor=pixels", "metric=fid,kid_poly,cmmd,prdc,odist", "pair.reference=a", "pair.candidate=a,b",
             "progress=false", "extractor.size=24")


def test_kill_9_mid_sweep_then_rerun_finishes_only_what_is_missing(work):
    proc = start_dsim("-m", *SLOW_GRID, "hydra.sweep.dir=sweep1", cwd=work)
    finished = []
    for line in proc.stdout:
        if line.startswith("[cell"):
            finished.append(line)
        if len(finished) == 3:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    before = runs(work)
    assert [r.info.status for r in parents(before)] == ["RUNNING"]  # nobody has looked since
    done = run_dsim("-m", *SLOW_GRID, "hydra.sweep.dir=sweep2", cwd=work)
    reused = [line for line in done.stdout.splitlines() if line.startswith("[cell") and "reused" in line]
    assert len(reused) == len(cells(before)) >= 3
    after = runs(work)
    old_parent = next(p for p in parents(after) if p.info.run_id == parents(before)[0].info.run_id)
    assert old_parent.info.status == "KILLED"  # marked by the rerun, whose store housekeeping found it dead
    computed = [r for r in cells(after) if "dsim.reused_from" not in r.data.tags]
    keys = [r.data.tags["dsim.cell_key"] for r in computed]
    assert len(keys) == len(set(keys)) == 10  # every cell computed once: no duplicates, none lost
    assert all(r.info.status == "FINISHED" for r in cells(after))
    assert len(records(work / "sweep2")) == 10
    new_parent = next(p for p in parents(after) if p.info.run_id != old_parent.info.run_id)
    stand_ins = [r for r in cells(after) if "dsim.reused_from" in r.data.tags]  # the reused cells, in the new sweep
    assert sorted(r.data.tags["dsim.reused_from"] for r in stand_ins) == sorted(r.info.run_id for r in cells(before))
    assert all(r.data.tags["mlflow.parentRunId"] == new_parent.info.run_id for r in stand_ins)


def test_sigterm_marks_the_sweep_killed_and_keeps_finished_cells(work):
    proc = start_dsim("-m", *SLOW_GRID, "hydra.sweep.dir=sweep", cwd=work)
    for line in proc.stdout:
        if line.startswith("[cell"):
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in err
    found = runs(work)
    assert [p.info.status for p in parents(found)] == ["KILLED"]
    assert cells(found) and all(r.info.status == "FINISHED" for r in cells(found))


def test_a_failing_cell_does_not_stop_the_others(work):
    done = run_dsim("-m", "extractor=pixels", "metric=fid,cmmd", "pair.reference=a", "pair.candidate=b,missing",
                    "progress=false", "hydra.sweep.dir=sweep", cwd=work, check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    failures = [line for line in done.stderr.splitlines() if line.startswith("dsim: error: cell ")]
    assert len(failures) == 2 and all("dataset path does not exist" in line for line in failures)
    assert "2 of 4 cells failed" in done.stderr
    csv = (work / "sweep" / "results.csv").read_text()
    assert csv.count("a_vs_b") == 2 and "missing" not in csv
    found = runs(work)
    assert [p.info.status for p in parents(found)] == ["FAILED"] and len(cells(found)) == 2


def test_a_finished_cell_is_reused_unless_forced(work):
    first = _first_cell(work, "hydra.run.dir=out1")
    second = _first_cell(work, "hydra.run.dir=out2")
    assert "reused the finished run" in second.stdout and "reused the finished run" not in first.stdout
    one, two = (json.loads((work / d / "result.json").read_text()) for d in ("out1", "out2"))
    assert two["reused"] and two["mlflow_run_id"] == one["mlflow_run_id"] and two["values"] == one["values"]
    assert len(cells(runs(work))) == 1
    _first_cell(work, "hydra.run.dir=out3", "force=true")
    assert len(cells(runs(work))) == 2
    _first_cell(work, "hydra.run.dir=out4", "extractor.size=8")  # another config: another key
    assert len(cells(runs(work))) == 3


def test_kill_9_mid_embedding_loses_no_finished_batch(tmp_path):
    """``dsim embed`` killed after some batches: the rerun forwards only the rest, and the features are the
    same as an uninterrupted run's."""
    write_crops(tmp_path / "data", 300, seed=21, size=64)
    cache = tmp_path / "cache"
    args = ("embed", str(tmp_path / "data"), "--extractor", "mobilenet_v2", "--batch-size", "8", "--device", "cpu",
            "--cache-dir", str(cache))
    proc = start_dsim(*args, "--out", str(tmp_path / "x.npz"), cwd=tmp_path)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and stored_vectors(cache) < 40:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    kept = stored_vectors(cache)
    assert 40 <= kept < 300
    done = run_dsim(*args, "--out", str(tmp_path / "resumed.npz"), cwd=tmp_path)
    assert f"({300 - kept} embedded now, {kept} from the cache)" in done.stdout
    clean = run_dsim(*args[:-1], str(tmp_path / "clean-cache"), "--out", str(tmp_path / "clean.npz"), cwd=tmp_path)
    assert "(300 embedded now, 0 from the cache)" in clean.stdout
    with np.load(tmp_path / "resumed.npz") as resumed, np.load(tmp_path / "clean.npz") as whole:
        assert list(resumed["hashes"]) == list(whole["hashes"])
        np.testing.assert_allclose(resumed["features"], whole["features"], rtol=0, atol=1e-5)


def test_results_and_report_keep_variants_apart_and_show_every_value(work):
    small = work / "small"
    write_crops(small / "a", 12, seed=3)
    write_crops(small / "b", 12, seed=4)
    done = run_dsim("-m", "metric=psnr", "pairing=random,nearest", "pairing.extractor=pixels", "pair.reference=small/a",
                    "pair.candidate=small/b", "progress=false", "hydra.sweep.dir=paired", cwd=work)
    table = [line for line in done.stdout.splitlines() if " psnr " in f" {line} " and not line.startswith("[cell")]
    assert len(table) == 2 and any("random" in line for line in table) and any("nearest" in line for line in table)
    header = (work / "paired" / "results.csv").read_text().splitlines()[0]
    assert "pairing.method" in header
    run_dsim("extractor=pixels", "metric=prdc", "pair.reference=small/a", "pair.candidate=small/b",
             "progress=false", cwd=work)
    report = run_dsim("report", "--out", "report", cwd=work)
    for value in ("precision", "recall", "density", "coverage", "psnr [pairing.method=random]",
                  "psnr [pairing.method=nearest]"):
        assert value in report.stdout, report.stdout


def test_the_table_marks_random_weights_and_skipped_images(work):
    small = work / "small"
    write_crops(small / "a", 12, seed=3)
    write_crops(small / "b", 12, seed=4)
    (small / "b" / "zz_broken.png").write_bytes((small / "b" / "000.png").read_bytes()[:100])
    done = run_dsim("extractor=mobilenet_v2", "extractor.weights=random", "pair.reference=small/a",
                    "pair.candidate=small/b", "dataset.on_error=skip", "progress=false", cwd=work)
    (row,) = [line for line in done.stdout.splitlines() if "mobilenet_v2" in line]
    assert "RANDOM WEIGHTS" in row and "0/1" in row  # skipped: reference/candidate


def test_dsim_is_fast_to_fail_on_a_missing_folder_even_with_a_big_reference(work):
    started = time.monotonic()
    done = run_dsim("extractor=mobilenet_v2", "pair.reference=a", "pair.candidate=nope", "progress=false",
                    cwd=work, check=False)
    assert done.returncode == 2 and "dataset path does not exist" in done.stderr
    assert stored_vectors(work / "cache") == 0  # nothing was embedded
    assert time.monotonic() - started < 60
