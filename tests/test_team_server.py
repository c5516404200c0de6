"""A team's tracking server: a real PostgreSQL (Debian's package, a temporary data directory on 127.0.0.1)
under ``mlflow server`` with proxied artifacts and basic auth; a parallel grid logs to it over HTTP, and
every run, parent/child link, tag and artifact is there. Both services are stopped afterwards."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from dsim_testing import run_dsim, write_crops

pytestmark = pytest.mark.slow

PG_BIN = next((p for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None) \
    if Path("/usr/lib/postgresql").is_dir() else None
ADMIN, PASSWORD = "admin", "dsim-test-Secret-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its tools as the ``postgres`` user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="module")
def postgres():
    if PG_BIN is None or not (PG_BIN / "initdb").exists():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed (Debian: apt-get install postgresql); .ci/run installs it")
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="dsim-postgres-"))  # not under pytest's folders: the postgres user reads it
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = _free_port()
    subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "dsim", "-A", "trust"]), check=True,
                   capture_output=True, timeout=120)
    subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
                                 f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1", "start"]),
                   check=True, capture_output=True, timeout=120)
    try:
        for db in ("mlflow", "mlflow_auth"):
            subprocess.run(_as_postgres([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "dsim",
                                         db]), check=True, capture_output=True, timeout=60)
        yield f"postgresql://dsim@127.0.0.1:{port}"
    finally:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
                       capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def server(postgres, tmp_path_factory):
    """``mlflow server`` on PostgreSQL with proxied artifacts and basic auth (credentials from the environment)."""
    root = tmp_path_factory.mktemp("mlflow_server")
    auth = root / "basic_auth.ini"
    auth.write_text(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = {postgres}/mlflow_auth\n"
                    f"admin_username = {ADMIN}\nauthorization_function = "
                    "mlflow.server.auth:authenticate_request_basic_auth\n")
    port = _free_port()
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(auth), "MLFLOW_AUTH_ADMIN_PASSWORD": PASSWORD,
           "MLFLOW_FLASK_SERVER_SECRET_KEY": "dsim-test"}
    log = open(root / "server.log", "w")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "server", "--app-name", "basic-auth",
                             "--backend-store-uri", f"{postgres}/mlflow", "--artifacts-destination",
                             str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
                            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, 180, proc)
        yield {"uri": f"http://127.0.0.1:{port}", "artifacts": root / "artifacts"}
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_a_parallel_grid_logs_everything_to_the_team_server(server, tmp_path):
    write_crops(tmp_path / "a", 40, seed=51)
    write_crops(tmp_path / "b", 40, seed=52)
    credentials = {"MLFLOW_TRACKING_URI": server["uri"], "MLFLOW_TRACKING_USERNAME": ADMIN,
                   "MLFLOW_TRACKING_PASSWORD": PASSWORD}
    done = run_dsim("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "extractor=pixels", "metric=fid,kid_poly",
                    "pair.reference=a", "pair.candidate=a,b", "progress=false", "hydra.sweep.dir=sweep", cwd=tmp_path,
                    env=credentials)
    assert "not logged" not in done.stderr and server["uri"] in done.stdout
    records = [json.loads(p.read_text()) for p in (tmp_path / "sweep").rglob("result.json")]
    assert len(records) == 4 and all(r["tracking"] == "logged" for r in records)

    os.environ.update(MLFLOW_TRACKING_USERNAME=ADMIN, MLFLOW_TRACKING_PASSWORD=PASSWORD)
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=server["uri"])
        runs = client.search_runs([client.get_experiment_by_name("dsim").experiment_id])
        parents = [r for r in runs if r.data.tags.get("dsim.kind") == "sweep"]
        children = [r for r in runs if r not in parents]
        assert len(parents) == 1 and len(children) == 4, [r.info.status for r in runs]
        assert all(r.info.status == "FINISHED" for r in runs), [(r.info.status, r.data.tags.get("dsim.kind"), r.data.tags.get("dsim.warning")) for r in runs]
        assert all(c.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for c in children)
        by_id = {c.info.run_id: c for c in children}
        for record in records:
            run = by_id[record["mlflow_run_id"]]
            assert run.data.tags["dsim.cell_key"] == record["cell_key"]
            assert run.data.tags["dsim.reference.fingerprint"] == record["reference_fingerprint"]
            name = record["metric"]
            assert run.data.metrics[name] == pytest.approx(record["values"][name])
            logged = {a.path for a in client.list_artifacts(run.info.run_id)}
            assert "result.json" in logged and "artifacts" in logged
            fetched = client.download_artifacts(run.info.run_id, "result.json", str(tmp_path / run.info.run_id))
            assert json.loads(Path(fetched).read_text())["values"] == record["values"]
        assert {a.path for a in client.list_artifacts(parents[0].info.run_id)} >= {"results.csv"}
        assert list(server["artifacts"].rglob("result.json"))  # proxied: the server holds the files
    finally:
        for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            os.environ.pop(key, None)


def test_wrong_credentials_keep_the_record_pending(server, tmp_path):
    write_crops(tmp_path / "a", 12, seed=53)
    done = run_dsim("extractor=pixels", "pair.reference=a", "pair.candidate=a", "progress=false", "hydra.run.dir=out",
                    "tracking.retry_s=2", cwd=tmp_path,
                    env={"MLFLOW_TRACKING_URI": server["uri"], "MLFLOW_TRACKING_USERNAME": ADMIN,
                         "MLFLOW_TRACKING_PASSWORD": "wrong"})
    assert done.returncode == 0 and "not logged to MLflow" in done.stderr and "Traceback" not in done.stderr
    assert json.loads((tmp_path / "out" / "result.json").read_text())["tracking"] == "pending"
