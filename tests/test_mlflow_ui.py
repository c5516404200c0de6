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
    experiment, run = _client(store[1])
    dom = _page_dom(store[1], experiment.experiment_id, ui.VIEW_KEY, run.info.run_name, tmp_path)
    assert "<title>Runs - Experiment" in dom  # the runs table, not the GenAI overview
    assert "viewing a shared view" in dom  # dsim's columns


def _page_dom(uri: str, experiment_id: str, share_key: str, expected: str, tmp_path) -> str:
    """The DOM headless Chromium renders of a runs page served by ``mlflow server`` (asserting ``expected``)."""
    browser = chromium()
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
                               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_up(f"http://127.0.0.1:{port}/health", server)
        url = ui.page_url(f"http://127.0.0.1:{port}", experiment_id, share_key)
        dom = ""
        for _ in range(3):  # the runs table is drawn after the app's API calls return
            done = subprocess.run([browser, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                                   "--virtual-time-budget=60000", "--dump-dom", url],
                                  capture_output=True, text=True, timeout=180)
            dom = done.stdout
            if expected in dom:
                break
        assert expected in dom, dom[-2000:]
        return dom
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_sweeps_varied_keys_are_its_views_columns():
    logged = {"extractor.name", "metric.name", "pair.name", "perturb.name", "perturb.strength", "metric.bootstrap"}
    swept = ["extractor", "perturb", "perturb.strength", "generator"]  # no cell logged a generator
    assert ui.swept_params(swept, logged) == ["extractor.name", "perturb.name", "perturb.strength"]
    view = json.loads(ui.sweep_view("0123456789abcdef", ["perturb.strength"]))
    assert view["selectedColumns"] == ["metrics.`value`", *(f"params.`{p}`" for p in ui.CELL_PARAMS),
                                       "params.`perturb.strength`"]
    assert view["searchFilter"] == "tags.`mlflow.parentRunId` = '0123456789abcdef'"


@pytest.mark.slow
def test_a_sweep_prints_the_page_of_its_cells_with_the_keys_it_varied(tmp_path):
    from mlflow.tracking import MlflowClient

    write_crops(tmp_path / "ref", 20, seed=1, size=32)
    write_crops(tmp_path / "cand", 20, seed=2, size=32)
    done = run_dsim("-m", "extractor=pixels", "metric=fid", "perturb=blur", "perturb.strength=1,2",
                    "pair.reference=ref", "pair.candidate=cand", "progress=false", f"cache_dir={tmp_path / 'cache'}",
                    f"tracking.store_dir={tmp_path / 'mlruns'}", "dataset.root=.", cwd=tmp_path)
    client = MlflowClient(tracking_uri=tracking_uri(tmp_path))
    experiment = client.get_experiment_by_name("dsim")
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`dsim.kind` = 'sweep'")
    key = ui.sweep_view_key(parent.info.run_id)
    assert f"#/experiments/{experiment.experiment_id}/runs?viewStateShareKey={key}" in done.stdout
    view = json.loads(experiment.tags[ui.VIEW_TAG + key])
    assert "params.`perturb.strength`" in view["selectedColumns"]
    cells = client.search_runs([experiment.experiment_id], view["searchFilter"])  # the UI's filter, MLflow's parser
    assert sorted(run.data.params["perturb.strength"] for run in cells) == ["1", "2"]
    assert json.loads(experiment.tags[ui.VIEW_TAG + ui.VIEW_KEY]) == json.loads(ui.view_state())  # untouched
    # the page shows the swept key's column and the filter; the cells are one click away, under their parent
    # (MLflow draws a child under its parent, and a shared view cannot say which runs to expand)
    dom = _page_dom(tracking_uri(tmp_path), experiment.experiment_id, key, "perturb.strength", tmp_path)
    assert parent.info.run_id in dom and "mlflow.parentRunId" in dom


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
