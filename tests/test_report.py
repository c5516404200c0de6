"""Sweep-level analysis on the parent run (entropy across cells, metric × metric) and ``dsim report``."""

import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from dsim_testing import run_dsim

sys.path.insert(0, str(Path(__file__).parent / "paired"))
from paired_helpers import write_jpeg_copies  # noqa: E402

from dsim.analysis import sweep as sweep_analysis  # noqa: E402
from dsim.cli.commands import report as report_command  # noqa: E402
from dsim.errors import DsimError  # noqa: E402

QUALITIES = (10, 40, 90)


@pytest.fixture(scope="module")
def swept(tmp_path_factory, crops):
    """One multirun: psnr (paired by name) and pixels·fid, reference a vs its JPEG copies at 3 qualities."""
    work = tmp_path_factory.mktemp("sweep")
    (work / "a").mkdir()
    for path in sorted(crops["a"].glob("*.png"))[:8]:
        shutil.copy(path, work / "a")
    for q in QUALITIES:
        write_jpeg_copies(work / "a", work / f"q{q}", quality=q)
    done = run_dsim("-m", "metric=psnr,fid", "extractor=pixels", "pairing=by_name", "pair.reference=a",
                    f"pair.candidate={','.join(f'q{q}' for q in QUALITIES)}", "hydra.sweep.dir=sweep",
                    "progress=false", "device=cpu", cwd=work)
    return work, done


def _runs(work):
    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlruns' / 'mlflow.db'}")
    return client, client.search_runs([client.get_experiment_by_name("dsim").experiment_id])


@pytest.mark.slow
def test_parent_run_holds_the_cross_cell_entropy_and_metric_correlations(swept):
    work, done = swept
    client, runs = _runs(work)
    (parent,) = [r for r in runs if r.data.tags.get("dsim.kind") == "sweep"]
    metrics = parent.data.metrics
    for series in ("psnr", "pixels.fid"):
        assert metrics[f"{series}.entropy_n"] == 3
        assert {f"{series}.entropy_pearson_r", f"{series}.entropy_pearson_p", f"{series}.entropy_spearman_rho"} <= set(metrics)
    logged = {f.path for f in client.list_artifacts(parent.info.run_id, "sweep_analysis")}
    assert {f"sweep_analysis/{name}" for name in ("cells.csv", "entropy_correlation.csv", "metric_correlation.csv",
                                                  "metric_correlation.png", "entropy_across_cells.png")} <= logged
    matrix = pd.read_csv(work / "sweep" / "sweep_analysis" / "metric_correlation.csv", index_col=0)
    assert list(matrix.columns) == ["pixels.fid", "psnr"] and matrix.loc["psnr", "psnr"] == pytest.approx(1.0)
    assert matrix.loc["psnr", "pixels.fid"] < 0          # more compression: lower PSNR, larger FID
    cells = pd.read_csv(work / "sweep" / "sweep_analysis" / "cells.csv", index_col=0)
    assert cells.loc["a_vs_q10", "psnr"] < cells.loc["a_vs_q40", "psnr"] < cells.loc["a_vs_q90", "psnr"]
    assert "sweep analysis:" in done.stdout


@pytest.mark.slow
def test_dsim_report_prints_and_writes_the_pivot(swept):
    work, _ = swept
    done = run_dsim("report", "--out", "rep", cwd=work)
    assert "a_vs_q10" in done.stdout and "psnr" in done.stdout and "pixels" in done.stdout
    table = pd.read_csv(work / "rep" / "report.csv", index_col=0)
    assert list(table.index) == [f"a_vs_q{q}" for q in QUALITIES]
    assert list(table.columns) == ["none/psnr", "pixels/fid"]
    cells = pd.read_csv(work / "sweep" / "sweep_analysis" / "cells.csv", index_col=0)
    np.testing.assert_allclose(table["none/psnr"], cells["psnr"])
    assert (work / "rep" / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert "<table" in (work / "rep" / "report.html").read_text()


@pytest.mark.slow
def test_report_selects_by_sweep_filter_experiment_and_uri(swept, tmp_path, capsys, monkeypatch):
    work, _ = swept
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{work / 'mlruns' / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)                                    # not the store's folder: the URI finds it
    report_command.run(["--tracking-uri", uri, "--sweep", str(work / "sweep"), "--filter",
                        "tags.`dsim.metric` = 'psnr'", "--values", "all", "--out", "r1"])
    table = pd.read_csv(tmp_path / "r1" / "report.csv", index_col=0)
    assert set(table.columns) >= {"none/psnr", "none/psnr_median", "none/psnr.entropy_pearson_r"}
    assert not any(c.startswith("pixels/") for c in table.columns)
    runs = pd.read_csv(tmp_path / "r1" / "report_runs.csv")
    assert runs["sweep"].nunique() == 1 and len(runs["run_id"].unique()) == 3

    report_command.run(["--tracking-uri", uri, "--sweep", "latest", "--experiment", "dsim", "--out", "r2"])
    out = capsys.readouterr().out
    assert "6 value(s) from 6 run(s), sweep latest" in out and "fid" in out and "psnr" in out
    with pytest.raises(DsimError, match="no experiment 'nope'.*experiments: .*dsim"):
        report_command.run(["--tracking-uri", uri, "--experiment", "nope"])
    with pytest.raises(DsimError, match="no sweep 'elsewhere'"):
        report_command.run(["--tracking-uri", uri, "--sweep", "elsewhere"])
    with pytest.raises(DsimError, match="no MLflow store"):
        report_command.run(["--store-dir", str(tmp_path / "empty")])


def test_sweep_analysis_with_too_few_cells_gives_nan_not_an_error(tmp_path, crops):
    records = [{"pair": "p", "extractor": "pixels", "metric": "fid", "candidate": str(crops["b"]),
                "values": {"fid": 1.0}},
               {"pair": "q", "extractor": "pixels", "metric": "fid", "candidate": str(tmp_path / "gone"),
                "values": {"fid": 2.0}}]
    with pytest.warns(UserWarning, match="no entropy for"):
        metrics, files = sweep_analysis.analyse(records, tmp_path / "out", cache_dir=tmp_path / "cache")
    assert metrics["pixels.fid.entropy_n"] == 1 and math.isnan(metrics["pixels.fid.entropy_pearson_r"])
    assert all(path.exists() for path in files)
    assert sweep_analysis.analyse([], tmp_path / "none") == ({}, [])
