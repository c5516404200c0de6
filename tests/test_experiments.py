"""DVC experiments: `dvc exp run experiment -S group=choice` composes conf/ into params.yaml (Hydra
composition), runs one cell from it, and `dvc exp show` lists the variant with its metrics; the MLflow
run carries the experiment's name. params.yaml stays the composition of conf/ with no overrides."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from dsim_testing import write_crops

REPO = Path(__file__).resolve().parent.parent


def sh(*args, cwd, env=None):
    done = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_params_yaml_is_the_composition_of_conf(tmp_path):
    from dvc.utils.hydra import compose_and_dump

    composed = tmp_path / "params.yaml"
    compose_and_dump(composed, str(REPO / "conf"), None, "config", str(tmp_path), [])
    assert composed.read_text() == (REPO / "params.yaml").read_text(), (
        "params.yaml is out of date with conf/: regenerate it with `dvc exp run experiment` or copy this output")


def test_dvc_metrics_files_are_committed_not_ignored():
    """`dvc exp show` reads metrics from the experiment's git commit: an ignored file shows as '!'."""
    for metrics_file in ("results/experiment.json", "results/default_grid.json"):
        ignored = subprocess.run(["git", "check-ignore", "-q", metrics_file], cwd=REPO)
        assert ignored.returncode == 1, f"{metrics_file} is git-ignored"


def test_project_path_follows_dvc_root(monkeypatch, tmp_path):
    from dsim.data.dvc import project_path
    from dsim.tracking.mlflow_store import resolve_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert project_path("cache") == Path("cache")
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert project_path("cache") == tmp_path / "cache"
    assert project_path("/abs/cache") == Path("/abs/cache")
    assert resolve_uri(None, "mlruns") == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"


@pytest.fixture()
def project(tmp_path):
    """A git + DVC project with dsim's conf/, dvc.yaml, params.yaml and Hydra composition on."""
    write_crops(tmp_path / "data" / "photos_a", 12, seed=3, size=64)
    write_crops(tmp_path / "data" / "photos_b", 12, seed=4, size=64)
    shutil.copytree(REPO / "conf", tmp_path / "conf")
    for name in ("dvc.yaml", "params.yaml", ".gitignore"):
        shutil.copy(REPO / name, tmp_path / name)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DVC_ROOT", "DVC_EXP_NAME")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `dsim` for DVC's stages
    for args in (["git", "init", "-q"], ["git", "config", "user.email", "t@example.com"],
                 ["git", "config", "user.name", "t"], [sys.executable, "-m", "dvc", "init", "-q"],
                 [sys.executable, "-m", "dvc", "config", "hydra.enabled", "true"],
                 [sys.executable, "-m", "dvc", "add", "-q", "data"], ["git", "add", "-A"],
                 ["git", "commit", "-qm", "baseline"]):
        sh(*args, cwd=tmp_path, env=env)
    return tmp_path, env


@pytest.mark.slow
def test_exp_run_with_a_hydra_override_is_listed_with_its_metrics(project):
    root, env = project
    dvc = [sys.executable, "-m", "dvc"]
    sh(*dvc, "exp", "run", "experiment", "-n", "pixels-near", "-S", "extractor=pixels", "-S", "metric=kid_poly",
       "-S", "metric.params.subset_size=6", cwd=root, env=env)

    params = (root / "params.yaml").read_text()
    assert "name: pixels" in params and "name: kid_poly" in params  # composed from conf/, not edited in place
    shown = json.loads(sh(*dvc, "exp", "show", "--json", cwd=root, env=env))
    experiments = {rev["name"]: rev for baseline in shown for exp in baseline.get("experiments") or []
                   for rev in exp["revs"]}
    variant = experiments["pixels-near"]["data"]
    composed = variant["params"]["params.yaml"]["data"]
    assert composed["extractor"]["name"] == "pixels" and composed["metric"]["name"] == "kid_poly"
    values = variant["metrics"]["results/experiment.json"]["data"]
    assert set(values) == {"kid_poly", "kid_poly_std"}

    record = json.loads((root / "results" / "experiment" / "result.json").read_text())
    assert record["values"]["kid_poly"] == pytest.approx(values["kid_poly"], rel=1e-12)
    assert record["extractor"] == "pixels" and record["dvc_experiment"] == "pixels-near"
    client = MlflowClient(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    run = client.get_run(record["mlflow_run_id"])
    assert run.data.tags["dsim.dvc_experiment"] == "pixels-near"
    assert run.data.metrics["kid_poly"] == pytest.approx(values["kid_poly"], rel=1e-12)
