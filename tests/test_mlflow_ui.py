"""dsim's store in the MLflow UI: the experiment is a "machine learning" one (the UI opens on its runs table,
not the GenAI overview), runs say what they are, ``value`` is every run's headline number, and dsim's shared
view has the grid's columns picked. A real browser loads the page and finds the run in the runs table."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import pytest

from dsim.tracking import ui
from dsim_testing import run_dsim, tracking_uri, write_crops

from analysis.chromium_probe import FLAGS, chromium  # noqa: E402  (tests/ is on the path)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with one finished cell (pixels x fid on two folders of crops)."""
    tmp = tmp_path_factory.mktemp("ui")
    write_crops(tmp / "ref", 40, seed=1, size=32)
    write_crops(tmp / "cand", 40, seed=2, size=32)
    run_dsim("extractor=pixels", "metric=fid", "pair.reference=ref", "pair.candidate=cand", "progress=false",
             f"cache_dir={tmp / 'cache'}", f"tracking.store_dir={tmp / 'mlruns'}", "dataset.root=.", cwd=tmp)
    return tmp, tracking_uri(tmp)


def _client(uri):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("dsim")
    (run,) = client.search_runs([experiment.experiment_id])
    return experiment, run


@pytest.mark.slow
def test_the_experiment_opens_on_its_runs_with_the_grid_columns(store):
    experiment, run = _client(store[1])
    assert experiment.tags[ui.KIND_TAG] == "custom_model_development"
    assert "one run per extractor x metric x dataset pair" in experiment.tags[ui.NOTE_TAG]
    view = json.loads(experiment.tags[ui.VIEW_TAG + ui.VIEW_KEY])
    assert view["selectedColumns"][:2] == ["metrics.`value`", "params.`extractor.name`"]
    assert {f"params.`{p}`" for p in ui.CELL_PARAMS} <= set(view["selectedColumns"])
    assert set(ui.CELL_PARAMS) <= set(run.data.params)  # the view's columns exist
    assert run.data.metrics["value"] == pytest.approx(run.data.metrics["fid"])
    assert "through extractor pixels" in run.data.tags[ui.NOTE_TAG] and "lower is better" in run.data.tags[ui.NOTE_TAG]


@pytest.mark.slow
def test_chromium_finds_the_run_in_the_runs_table(store, tmp_path):
    browser = chromium()
    experiment, run = _client(store[1])
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store[1],
                               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_up(f"http://127.0.0.1:{port}/health", server)
        url = ui.page_url(f"http://127.0.0.1:{port}", experiment.experiment_id)
        dom = ""
        for _ in range(3):  # the runs table is drawn after the app's API calls return
            done = subprocess.run([browser, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                                   "--virtual-time-budget=60000", "--dump-dom", url],
                                  capture_output=True, text=True, timeout=180)
            dom = done.stdout
            if run.info.run_name in dom:
                break
        assert run.info.run_name in dom, dom[-2000:]
        assert "<title>Runs - Experiment" in dom  # the runs table, not the GenAI overview
        assert "viewing a shared view" in dom  # dsim's columns
    finally:
        server.terminate()
        server.wait(timeout=30)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, proc, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"mlflow server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"mlflow server not up after {timeout} s")
