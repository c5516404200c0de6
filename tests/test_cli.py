"""The `dsim` command end to end: run records, MLflow runs, sweeps, concurrency and one-line errors."""

import json
import shutil
import subprocess

import pytest
from mlflow.tracking import MlflowClient

from dsim_testing import DSIM, REPO, run_dsim

RECORD_KEYS = {"extractor", "metric", "pair", "reference", "candidate", "n_reference", "n_candidate", "values"}


def _runs(store):
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("dsim")
    return client.search_runs([experiment.experiment_id]) if experiment else []


@pytest.fixture()
def workdir(tmp_path, crops):
    shutil.copytree(crops["a"], tmp_path / "a")
    shutil.copytree(crops["b"], tmp_path / "b")
    return tmp_path


@pytest.mark.slow
def test_single_cell_writes_result_json_and_one_mlflow_run(workdir):
    done = run_dsim("extractor=pixels", "metric=kid_poly", "pair.reference=a", "pair.candidate=b",
                    "hydra.run.dir=out", cwd=workdir)
    record = json.loads((workdir / "out" / "result.json").read_text())
    assert RECORD_KEYS <= set(record)
    assert (record["extractor"], record["metric"], record["pair"]) == ("pixels", "kid_poly", "a_vs_b")
    assert record["n_reference"] == record["n_candidate"] == 24
    assert set(record["values"]) == {"kid_poly", "kid_poly_std"}
    assert "kid_poly" in done.stdout and "mlflow ui --backend-store-uri" in done.stdout

    (run,) = _runs(workdir / "mlruns")
    assert run.info.status == "FINISHED" and run.info.run_id == record["mlflow_run_id"]
    assert run.data.metrics["kid_poly"] == pytest.approx(record["values"]["kid_poly"])
    assert run.data.params["extractor.name"] == "pixels" and run.data.params["metric.params.subsets"] == "100"
    tags = run.data.tags
    assert tags["dsim.extractor.identity"] == record["extractor_identity"]
    assert tags["dsim.extractor.weights_checksum"] == "none"
    assert tags["dsim.reference.fingerprint"] == record["reference_fingerprint"]
    assert tags["dsim.candidate.fingerprint"] == record["candidate_fingerprint"]
    assert tags["dsim.version"] and tags["dsim.git_commit"]


@pytest.mark.slow
def test_parallel_multirun_has_a_parent_and_one_child_per_cell(workdir):
    done = run_dsim("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweep.dir=sweep",
                    "extractor=pixels", "metric=fid,kid_poly,kid_rbf", "pair.reference=a", "pair.candidate=a,b",
                    "progress=false", cwd=workdir)
    runs = _runs(workdir / "mlruns")
    parents = [r for r in runs if r.data.tags.get("dsim.kind") == "sweep"]
    children = [r for r in runs if r not in parents]
    assert len(parents) == 1 and len(children) == 6
    assert all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in children)
    assert all(r.info.status == "FINISHED" for r in runs)
    cells = {(r.data.tags["dsim.metric"], r.data.tags["dsim.pair"]) for r in children}
    assert len(cells) == 6
    assert (workdir / "sweep" / "results.csv").exists() and "a_vs_b" in done.stdout


@pytest.mark.slow
def test_two_concurrent_commands_share_one_store(workdir):
    # force=true: both compute and log (without it the later one may find the earlier one's finished run and
    # reuse it, logging nothing: right, but then the store sees one writer, not two at once)
    command = [*DSIM, "extractor=pixels", "pair.reference=a", "pair.candidate=b",
               "progress=false", "force=true"]
    procs = [subprocess.Popen(command + [f"hydra.run.dir=run{i}"], cwd=workdir, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert len(_runs(workdir / "mlruns")) == 2


@pytest.mark.slow
def test_tracking_uri_from_environment_is_honoured(workdir):
    other = workdir / "elsewhere"
    run_dsim("extractor=pixels", "pair.reference=a", "pair.candidate=b", cwd=workdir,
             env={"MLFLOW_TRACKING_URI": f"sqlite:///{other / 'mlflow.db'}"})
    assert len(_runs(other)) == 1 and not (workdir / "mlruns").exists()


@pytest.mark.slow
@pytest.mark.parametrize("args, expected", [
    (["extractor=nope"], "unknown extractor 'nope' (choose from: "),
    (["-m", "metric=fid,nope"], "unknown metric 'nope'"),
    (["pair.reference=missing_dir", "pair.candidate=b"], "dataset path does not exist"),
    (["device=tpu", "extractor=pixels", "pair.reference=a", "pair.candidate=b"], "unknown device 'tpu'"),
])
def test_bad_input_is_a_one_line_error(workdir, args, expected):
    done = run_dsim(*args, cwd=workdir, check=False)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("dsim: error:")]
    assert len(errors) == 1 and expected in errors[0], done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_truncated_image_stops_the_run_or_is_skipped_and_counted(workdir):
    broken = workdir / "b" / "zz_broken.png"
    broken.write_bytes((workdir / "b" / "000.png").read_bytes()[:150])
    done = run_dsim("extractor=pixels", "pair.reference=a", "pair.candidate=b", cwd=workdir, check=False)
    assert done.returncode == 2 and "zz_broken.png" in done.stderr and "Traceback" not in done.stderr

    run_dsim("extractor=pixels", "pair.reference=a", "pair.candidate=b", "dataset.on_error=skip",
             "hydra.run.dir=out", cwd=workdir)
    record = json.loads((workdir / "out" / "result.json").read_text())
    assert record["n_candidate"] == 24 and record["n_skipped"] == 1
    assert list(record["skipped"]["candidate"]) == ["zz_broken.png"]


def test_console_script_is_installed():
    script = shutil.which("dsim", path=str(REPO / ".venv" / "bin")) or shutil.which("dsim")
    assert script, "the `dsim` console script is not on PATH; install with `pip install -e .`"
