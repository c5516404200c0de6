"""Cells and embedding shards as cluster jobs: submitit (local executor; the Slurm preset as far as there is
no cluster) and a local Ray cluster — the same result.json, parent/child MLflow runs and results.csv as a
local sweep, and sharded embedding into the shared store."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from dsim_testing import run_dsim, write_crops

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("launch_sets")
    write_crops(root / "a", 60, seed=41, size=48)
    write_crops(root / "b", 60, seed=42, size=48)
    return root


def _runs(work: Path):
    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlruns' / 'mlflow.db'}")
    return client.search_runs([client.get_experiment_by_name("dsim").experiment_id])


def _assert_a_recorded_grid(work: Path, sweep: Path, n_cells: int) -> None:
    records = [json.loads(p.read_text()) for p in sweep.rglob("result.json")]
    assert len(records) == n_cells and all(r["tracking"] == "logged" for r in records)
    runs = _runs(work)
    parents = [r for r in runs if r.data.tags.get("dsim.kind") == "sweep"]
    children = [r for r in runs if r not in parents]
    assert len(parents) == 1 and len(children) == n_cells
    assert all(r.info.status == "FINISHED" for r in runs)
    assert all(c.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for c in children)
    assert {c.info.run_id for c in children} == {r["mlflow_run_id"] for r in records}
    assert (sweep / "results.csv").read_text().count("\n") == n_cells + 1


GRID = ("extractor=pixels", "metric=fid,kid_poly", "progress=false", "device=cpu")


def test_a_grid_as_submitit_local_jobs(tmp_path, sets):
    run_dsim("-m", *GRID, f"pair.reference={sets / 'a'}", f"pair.candidate={sets / 'a'},{sets / 'b'}",
             "hydra/launcher=submitit_local", "hydra.sweep.dir=sweep", cwd=tmp_path)
    _assert_a_recorded_grid(tmp_path, tmp_path / "sweep", 4)
    assert list((tmp_path / "sweep" / ".submitit").rglob("*_log.out"))  # they really ran as submitit jobs


def test_sharded_embedding_then_a_grid_forwards_nothing(tmp_path, sets):
    shards = ("-m", "task=embed", f"task.dataset={sets / 'a'}", "extractor=pixels", "task.shards=4",
              "task.shard=range(4)", "hydra/launcher=submitit_local", "progress=false")
    done = run_dsim(*shards, "hydra.sweep.dir=shards", cwd=tmp_path)
    summary = [json.loads(p.read_text()) for p in (tmp_path / "shards").rglob("embed.json")]
    assert sorted(s["shard"] for s in summary) == [0, 1, 2, 3]
    assert sum(s["images"] for s in summary) == sum(s["embedded"] for s in summary) == 60
    assert all(s["images"] > 0 for s in summary) and "60 of 60 images embedded now" in done.stdout
    again = run_dsim(*shards, "hydra.sweep.dir=shards_again", cwd=tmp_path)  # resumable: nothing left to do
    assert "0 of 60 images embedded now" in again.stdout
    run_dsim("extractor=pixels", f"pair.reference={sets / 'a'}", f"pair.candidate={sets / 'a'}", "progress=false",
             "hydra.run.dir=cell", cwd=tmp_path)
    assert json.loads((tmp_path / "cell" / "result.json").read_text())["embedded"] == {"reference": 0, "candidate": 0}


def test_the_slurm_preset_renders_the_sbatch_script_and_needs_sbatch(tmp_path, sets):
    """Without a cluster: the preset composes (GPU defaults, every plugin key settable) into the sbatch script
    submitit would submit; launching it where there is no ``sbatch`` is one line."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf
    from submitit.slurm.slurm import _make_sbatch_string

    from dsim.cli import app as cli

    cli._register_launcher_bases([])  # what the dsim command does before Hydra composes
    with initialize_config_dir(config_dir=str(cli.CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu",
                                                       "hydra.launcher.mem_gb=64"], return_hydra_config=True)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert (launcher["gpus_per_node"], launcher["partition"], launcher["mem_gb"]) == (1, "gpu", 64)
    assert launcher["cpus_per_task"] == 8 and launcher["timeout_min"] == 240
    script = _make_sbatch_string(command="python -m submitit.core._submit FOLDER", folder=tmp_path, job_name="dsim",
                                 partition=launcher["partition"], time=launcher["timeout_min"],
                                 gpus_per_node=launcher["gpus_per_node"], cpus_per_task=launcher["cpus_per_task"],
                                 mem=f"{launcher['mem_gb']}GB")
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=1", "#SBATCH --cpus-per-task=8",
                 "#SBATCH --mem=64GB", "#SBATCH --time=240"):
        assert line in script, script
    if shutil.which("sbatch") is None:
        done = run_dsim("-m", *GRID, f"pair.reference={sets / 'a'}", f"pair.candidate={sets / 'b'}",
                        "hydra/launcher=submitit_slurm", cwd=tmp_path, check=False)
        assert done.returncode == 2 and "no `sbatch` here" in done.stderr and "Traceback" not in done.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def ray_cluster():
    """A local Ray cluster (``ray start --head`` on 127.0.0.1), stopped afterwards."""
    try:
        import hydra_plugins.hydra_ray_launcher  # noqa: F401
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("ray / hydra-ray-launcher are not installed (scripts/install.sh installs them)")
        pytest.skip("ray / hydra-ray-launcher are not installed")
    ray = str(Path(sys.executable).parent / "ray")
    port = _free_port()
    temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths have a length limit
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_TMPDIR": str(temp)}
    started = subprocess.run([ray, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                              "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
                             capture_output=True, text=True, timeout=300, env=env)
    assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
    try:
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120, env=env)
        shutil.rmtree(temp, ignore_errors=True)


def test_a_grid_as_tasks_of_a_ray_cluster(tmp_path, sets, ray_cluster):
    address, env = ray_cluster
    run_dsim("-m", *GRID, f"pair.reference={sets / 'a'}", f"pair.candidate={sets / 'a'},{sets / 'b'}",
             "hydra/launcher=ray", "hydra.sweep.dir=sweep", cwd=tmp_path,
             env={"RAY_ADDRESS": address, "RAY_USAGE_STATS_ENABLED": "0", "RAY_TMPDIR": env["RAY_TMPDIR"]})
    _assert_a_recorded_grid(tmp_path, tmp_path / "sweep", 4)
