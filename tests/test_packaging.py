"""dsim as an installed package, not only a checkout: the wheel carries the configs, a project's conf/ adds
its own datasets, pairs, extractors and metrics, and ``dsim init`` makes a git repository a registry."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from dsim_testing import REPO, write_crops

PROJECT_MODULE = '''\
"""A project's own extractor and metric, reached through _target_ in its conf/ (no edit to dsim)."""
import numpy as np
import torch

from dsim.extractors import Extractor, Preprocess


class ChannelMeans(Extractor):
    """Mean and std of each RGB channel: a 6-d feature."""

    name = "channel_means"
    layers = {"stats": 6}
    preprocess = Preprocess(size=32, resize=None, interpolation="bilinear")

    def build_model(self, weights):
        return torch.nn.Identity()

    def features(self, model, batch):
        return torch.cat([batch.mean(dim=(2, 3)), batch.std(dim=(2, 3))], dim=1)


def mean_gap(reference, candidate):
    """Euclidean distance between the two sets' mean features."""
    return {"mean_gap": float(np.linalg.norm(np.mean(reference, 0) - np.mean(candidate, 0)))}
'''


def test_the_package_list_names_every_package_under_dsim():
    declared = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.relative_to(REPO).parent.parts) for p in (REPO / "dsim").rglob("__init__.py")}
    conf = {".".join(("dsim", *p.relative_to(REPO).parent.parts)) for p in (REPO / "conf").rglob("*.yaml")}
    assert found | conf | {"dsim.conf"} == declared


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str]:
    """The wheel, and what its build printed (verbose: setuptools' warnings are in it)."""
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v", "-w",
                           str(out), str(REPO)], check=True, capture_output=True, text=True, timeout=600)
    (wheel_file,) = out.glob("dsim-*.whl")
    return wheel_file, done.stdout + done.stderr


@pytest.fixture(scope="module")
def wheel(built) -> Path:
    return built[0]


def test_the_build_prints_no_warnings(built):
    """A clean install is quiet: setuptools warns (~40 lines each) for a conf/ folder missing from the packages."""
    output = built[1]
    assert "Warning" not in output, [line for line in output.splitlines() if "Warning" in line][:5]


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed (dsim's dependencies are reused from this one's
    site-packages through a .pth file, so nothing is downloaded): its ``dsim`` script."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (purelib / "dsim-test-deps.pth").write_text("\n".join(deps) + "\n")
    with zipfile.ZipFile(wheel) as archive:  # what pip does for a pure wheel, minus the network
        archive.extractall(purelib)
    module, function = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]["dsim"].split(":")
    script = venv / "bin" / "dsim"
    script.write_text(f"#!{venv / 'bin' / 'python'}\nimport sys\nfrom {module} import {function}\n"
                      f"sys.exit({function}())\n")
    script.chmod(0o755)
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import dsim, dsim.conf; print(dsim.conf.__file__)"],
                           capture_output=True, text=True, check=True, cwd=venv, env=_clean_env()).stdout
    assert where.startswith(str(purelib)), where  # the wheel's dsim, not the checkout's
    return script


def _clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PYTHONPATH")}


def test_the_wheel_carries_every_config(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"dsim/conf/{p.relative_to(REPO / 'conf').as_posix()}" for p in (REPO / "conf").rglob("*.yaml")}
    assert shipped and shipped <= names


def _run(script: Path, *args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(script), *args], cwd=cwd, env=_clean_env(), capture_output=True, text=True,
                          timeout=900)


@pytest.mark.slow
def test_a_grid_from_an_empty_folder_with_the_projects_own_configs(installed, tmp_path):
    project = tmp_path / "project"
    write_crops(project / "images" / "real", 20, seed=1)
    write_crops(project / "images" / "fake", 20, seed=2)
    (project / "conf" / "pair").mkdir(parents=True)
    (project / "conf" / "pair" / "mine.yaml").write_text("name: real_vs_fake\nreference: images/real\n"
                                                         "candidate: images/fake\n")
    (project / "conf" / "extractor").mkdir()
    (project / "conf" / "extractor" / "channels.yaml").write_text("_target_: myproject.ChannelMeans\nname: channel_means\n"
                                                                  "weights: default\nlayer: stats\n")
    (project / "conf" / "metric").mkdir()
    (project / "conf" / "metric" / "gap.yaml").write_text("_target_: myproject.mean_gap\nname: mean_gap\n"
                                                          "higher_is_better: false\nbootstrap: 0\nparams: {}\n")
    (project / "myproject.py").write_text(PROJECT_MODULE)
    done = _run(installed, "-m", "extractor=pixels,channels", "metric=fid,gap", "pair=mine", "progress=false",
                "hydra.sweep.dir=sweep", "device=cpu", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    records = [json.loads(p.read_text()) for p in (project / "sweep").rglob("result.json")]
    cells = {(r["extractor"], r["metric"]) for r in records}
    assert cells == {("pixels", "fid"), ("pixels", "mean_gap"), ("channel_means", "fid"), ("channel_means", "mean_gap")}
    assert all(r["pair"] == "real_vs_fake" and r["n_reference"] == 20 for r in records)
    assert next(r for r in records if r["metric"] == "mean_gap" and r["extractor"] == "channel_means")["values"]["mean_gap"] > 0
    assert (project / "mlruns" / "mlflow.db").exists()
    unknown = _run(installed, "pair=nope", cwd=project)
    assert unknown.returncode == 2 and "unknown pair 'nope' (choose from: degraded, far, mine, near)" in unknown.stderr


@pytest.mark.slow
def test_dsim_init_makes_a_git_repository_a_registry(installed, tmp_path):
    repo = tmp_path / "registry"
    repo.mkdir()
    refused = _run(installed, "init", cwd=repo)
    assert refused.returncode == 2 and "not a git repository" in refused.stderr
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    done = _run(installed, "init", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert (repo / "conf" / "pair" / "example.yaml").exists() and (repo / "dvc.yaml").exists()
    assert (repo / ".dvc").is_dir() and {"/cache/", "/mlruns/"} <= set((repo / ".gitignore").read_text().split())
    write_crops(repo / "data" / "reference", 12, seed=3)
    write_crops(repo / "data" / "candidate", 12, seed=4)
    cell = _run(installed, "pair=example", "extractor=pixels", "progress=false", cwd=repo)
    assert cell.returncode == 0, cell.stderr
    assert "example" in cell.stdout and "12/12" in cell.stdout
    assert _run(installed, "report", cwd=repo).returncode == 0
    # what dsim wrote is ignored: git sees only init's files and the data (which `dvc add data` takes over)
    untracked = subprocess.run(["git", "status", "--porcelain", "-uall"], cwd=repo, capture_output=True, text=True,
                               check=True).stdout.split("\n")
    paths = {line[3:] for line in untracked if line}
    assert all(p.startswith(("conf/", "data/", ".dvc/", ".dvcignore", ".gitignore", "dvc.yaml")) for p in paths), paths
    again = _run(installed, "init", cwd=repo)  # nothing overwritten
    assert again.returncode == 0 and "wrote conf" not in again.stdout


def test_an_installed_packages_entry_points_reach_the_registries(tmp_path, monkeypatch):
    """A package that declares ``dsim.extractors`` / ``dsim.metrics`` entry points: their names just work."""
    (tmp_path / "dsim_plugin_demo.py").write_text(PROJECT_MODULE)
    info = tmp_path / "dsim_plugin_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dsim-plugin-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[dsim.extractors]\nchannel_means = dsim_plugin_demo:ChannelMeans\n\n"
                                           "[dsim.metrics]\nmean_gap = dsim_plugin_demo:mean_gap\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import numpy as np

    from dsim.extractors import build
    from dsim.metrics import METRICS, compute

    extractor = build("channel_means")
    assert extractor.dim == 6 and type(extractor).__module__ == "dsim_plugin_demo"
    rng = np.random.default_rng(0)
    try:
        assert compute("mean_gap", rng.normal(size=(10, 6)), rng.normal(size=(10, 6)) + 1)["mean_gap"] > 1
    finally:
        METRICS.pop("mean_gap", None)
