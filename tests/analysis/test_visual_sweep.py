"""Sweep-level distance views: the callback gathers the cells' I_dist and logs violins on the parent run."""

from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf
from visual_helpers import assert_real_png, cell_config, tracking_uri

from dsim.analysis import visual
from dsim.pipeline import run_cell
from dsim.cli.sweep import SweepRecord, parent_run_id

pytestmark = pytest.mark.filterwarnings("ignore::dsim.metrics.MetricWarning")  # tiny sets: rank-deficient FID


def test_sweep_parent_gets_violins_of_every_candidate_per_reference(tmp_path, image_sets, capsys):
    sweep_dir = tmp_path / "multirun"
    distance = {"n_components": 10, "candidates": [], "score_file": None, "score_column": "score"}
    config = OmegaConf.create({
        "hydra": {"sweep": {"dir": str(sweep_dir)}, "overrides": {"task": ["analysis=distance"]}},
        "tracking": {"uri": tracking_uri(tmp_path), "store_dir": str(tmp_path / "mlruns"), "experiment": "dsim"},
        "cache_dir": str(tmp_path / "cache"), "results_file": None, "analysis": {"distance": distance},
    })
    callback = SweepRecord()
    callback.on_multirun_start(config)
    parent = parent_run_id(sweep_dir)
    cells = [  # (reference, candidate, metric, analysis): two candidates of ref; an odist cell against extra
        ("ref", "cand", "fid", "distance"), ("ref", "extra", "fid", "distance"),
        ("ref", "extra", "kid_poly", "distance"),
        ("extra", "cand", "odist", "none"),
    ]
    for job, (reference, candidate, metric, analysis) in enumerate(cells):
        overrides = ["extractor=pixels", f"metric={'fid' if metric == 'odist' else metric}",
                     f"pair.reference={image_sets[reference]}", f"pair.candidate={image_sets[candidate]}",
                     f"analysis={analysis}"]
        if metric == "odist":
            overrides += ["metric.name=odist", "++metric.params.n_components=10"]
        if analysis == "distance":
            overrides += ["analysis.distance.n_components=10"]
        if metric == "kid_poly":
            overrides += ["metric.params.subsets=2"]
        cfg = cell_config(tmp_path, overrides)
        run_cell(cfg, sweep_dir / str(job), parent_run_id=parent)
    callback.on_multirun_end(config)
    assert "sweep visual analysis:" in capsys.readouterr().out

    out = sweep_dir / visual.SWEEP_DIR
    per_image = {path.name: pd.read_csv(path) for path in out.glob("distance_per_image_*.csv")}
    assert set(per_image) == {"distance_per_image_pixels_ref.csv", "distance_per_image_pixels_extra.csv"}
    ref = per_image["distance_per_image_pixels_ref.csv"]
    assert ref.groupby("dataset").size().to_dict() == {"cand": 34, "extra": 12}  # extra once, not twice
    assert per_image["distance_per_image_pixels_extra.csv"].groupby("dataset").size().to_dict() == {"cand": 34}
    splits = pd.read_csv(out / "distance_splits_pixels_ref.csv")
    assert set(splits["dataset"]) == {"cand", "extra"} and len(splits) == 10
    for name in ("distance_violin_pixels_ref.png", "distance_violin_pixels_extra.png"):
        assert_real_png(out / name)

    client = MlflowClient(tracking_uri=tracking_uri(tmp_path))
    logged = {Path(a.path).name for a in client.list_artifacts(parent, visual.SWEEP_DIR)}
    expected = {"distance_violin_pixels_ref.png", "distance_splits_pixels_ref.csv", "distance_violin_pixels_extra.png"}
    assert expected <= logged


def test_sweep_views_only_when_asked(tmp_path):
    assert visual.sweep_visual_analysis(tmp_path, OmegaConf.create({"analysis": {}})) == ({}, [])
    assert visual.sweep_visual_analysis(tmp_path, {"analysis": {"distance": {"n_components": 5}}}) == ({}, [])  # no cells
    assert not (tmp_path / visual.SWEEP_DIR).exists() or not any((tmp_path / visual.SWEEP_DIR).iterdir())
