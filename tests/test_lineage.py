"""Data lineage: a changed image is seen by DVC, re-embedded alone, digested anew, and flagged by
`dsim lineage` on the old run; datasets round-trip through a DVC remote."""

import json
import shutil
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from dsim_testing import run_dsim, write_crops


def sh(*args, cwd):
    done = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def dvc(*args, cwd):
    return sh(sys.executable, "-m", "dvc", *args, cwd=cwd)


@pytest.fixture()
def project(tmp_path):
    """A git + DVC project whose data/ (two small photo sets) is tracked by data.dvc."""
    write_crops(tmp_path / "data" / "ref", 12, seed=3, size=64)
    write_crops(tmp_path / "data" / "cand", 12, seed=4, size=64)
    sh("git", "init", "-q", cwd=tmp_path)
    sh("git", "config", "user.email", "t@example.com", cwd=tmp_path)
    sh("git", "config", "user.name", "t", cwd=tmp_path)
    dvc("init", "-q", cwd=tmp_path)
    dvc("add", "-q", "data", cwd=tmp_path)
    sh("git", "add", "-A", cwd=tmp_path)
    sh("git", "commit", "-qm", "data", cwd=tmp_path)
    return tmp_path


def _cell(project, run_dir, *extra):
    run_dsim("extractor=pixels", "pair.reference=data/ref", "pair.candidate=data/cand", f"hydra.run.dir={run_dir}",
             *extra, cwd=project)
    return json.loads((project / run_dir / "result.json").read_text())


@pytest.mark.slow
def test_changed_image_is_detected_reembedded_alone_and_flagged_on_old_runs(project):
    first = _cell(project, "run1")
    assert first["candidate_lineage"]["dvc_md5"].endswith(".dir")
    assert first["candidate_lineage"]["path_in_tracked"] == "cand"
    assert first["embedded"] == {"reference": 12, "candidate": 12}
    shown = run_dsim("lineage", first["mlflow_run_id"], cwd=project).stdout
    assert "workspace data matches" in shown and first["candidate_lineage"]["dvc_md5"] in shown

    victim = project / "data" / "cand" / "003.png"
    Image.open(victim).rotate(90).save(victim)
    assert "modified" in dvc("status", cwd=project)

    second = _cell(project, "run2")
    assert second["embedded"] == {"reference": 0, "candidate": 1}
    assert second["candidate_fingerprint"] != first["candidate_fingerprint"]
    assert second["reference_fingerprint"] == first["reference_fingerprint"]

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("dsim").experiment_id
    found = client.search_runs([experiment], filter_string=f"dataset.digest = '{second['candidate_fingerprint'][:32]}'")
    assert [r.info.run_id for r in found] == [second["mlflow_run_id"]]
    (run,) = [r for r in client.search_runs([experiment]) if r.info.run_id == first["mlflow_run_id"]]
    assert {d.dataset.name for d in run.inputs.dataset_inputs} == {"ref", "cand"}

    stale = run_dsim("lineage", first["mlflow_run_id"], cwd=project, check=False)
    assert stale.returncode == 1
    assert "CHANGED since the run" in stale.stdout and "modified: 003.png" in stale.stdout
    assert "workspace data matches" in run_dsim("lineage", second["mlflow_run_id"], cwd=project).stdout


@pytest.mark.slow
def test_unknown_run_id_is_a_one_line_error(project):
    done = run_dsim("lineage", "0123456789abcdef", cwd=project, check=False)
    assert done.returncode == 2 and done.stderr.strip().startswith("dsim: error: no run")


@pytest.mark.slow
def test_datasets_round_trip_through_a_dvc_remote(project, tmp_path_factory):
    remote = tmp_path_factory.mktemp("remote")
    dvc("remote", "add", "-d", "shared", str(remote), cwd=project)
    dvc("push", "-q", cwd=project)
    sh("git", "commit", "-qam", "remote", cwd=project)

    clone = tmp_path_factory.mktemp("clone") / "project"
    sh("git", "clone", "-q", str(project), str(clone), cwd=project)
    assert not (clone / "data").exists()
    dvc("pull", "-q", cwd=clone)
    for path in (project / "data").rglob("*.png"):
        assert (clone / path.relative_to(project)).read_bytes() == path.read_bytes()
    shutil.rmtree(clone)


@pytest.mark.slow
def test_the_embedding_store_travels_through_a_dvc_remote(project, tmp_path_factory):
    """The store is a handful of large files: `dvc add cache`, push; a second clone pulls it and runs the grid
    with zero forward passes."""
    first = _cell(project, "out")
    assert first["embedded"] == {"reference": 12, "candidate": 12}
    dvc("add", "-q", "cache", cwd=project)
    remote = tmp_path_factory.mktemp("store_remote")
    dvc("remote", "add", "-d", "shared", str(remote), cwd=project)
    dvc("push", "-q", cwd=project)
    sh("git", "add", "-A", cwd=project)
    sh("git", "commit", "-qm", "store", cwd=project)
    tracked = [p for p in (project / "cache").rglob("*") if p.is_file() and p.suffix in (".vec", ".keys")]
    assert 0 < len(tracked) <= 4  # few large files, not one per image

    clone = tmp_path_factory.mktemp("store_clone") / "project"
    sh("git", "clone", "-q", str(project), str(clone), cwd=project)
    dvc("pull", "-q", cwd=clone)
    second = _cell(clone, "out2", "force=true")  # computed again (not reused from the committed store), from pulled vectors
    assert second["embedded"] == {"reference": 0, "candidate": 0} and not second["reused"]
    assert second["values"] == pytest.approx(first["values"], rel=1e-12)
    shutil.rmtree(clone)
