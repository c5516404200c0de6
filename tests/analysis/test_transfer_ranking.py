"""Ranking a sweep's distances by how well they predict the score (issue 27 item 2): |ρ| with its interval,
the leave-one-dataset-out error of a linear fit, ``transfer/ranking.csv`` and its plot."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from dsim_testing import run_dsim, write_crops
from visual_helpers import assert_real_png

from dsim.analysis import transfer as tr
from dsim.analysis import transfer_ranking as rk


def test_the_absolute_interval_starts_at_zero_when_rhos_holds_zero():
    assert rk.absolute_interval(-0.9, -0.4) == (0.4, 0.9)
    assert rk.absolute_interval(0.2, 0.7) == (0.2, 0.7)
    assert rk.absolute_interval(-0.3, 0.6) == (0.0, 0.6)
    assert all(np.isnan(rk.absolute_interval(float("nan"), 0.5)))


def test_leave_one_out_errors_match_a_case_computed_by_hand():
    # (0,0), (1,1), (2,0): the line through the other two predicts 2, 0 and 2: errors 2, -1, 2
    rmse, mae = rk.leave_one_out_errors([0, 1, 2], [0, 1, 0])
    assert rmse == pytest.approx(np.sqrt(3)) and mae == pytest.approx(5 / 3)
    assert rk.leave_one_out_errors(np.arange(6.0), 3 - 0.5 * np.arange(6.0)) == pytest.approx((0, 0), abs=1e-12)
    assert all(np.isnan(rk.leave_one_out_errors([0, 1], [0, 1])))  # two datasets: no line through "the others"


def _record(extractor, metric, candidate, score, distance, value):
    return {"reference": "/d/ref", "candidate": f"/d/{candidate}", "extractor": extractor, "metric": metric,
            "pair": f"ref_vs_{candidate}",
            "values": {metric: value, "transfer_score": score, "transfer_distance": distance}}


def test_per_dataset_series_rank_by_rho_with_the_leave_one_out_error(tmp_path):
    rng = np.random.default_rng(3)
    distance = np.linspace(10, 50, 8)
    score = 1 - distance / 60
    records = []
    for i, d in enumerate(distance):
        records.append(_record("good", "fid", f"c{i}", float(score[i]), float(d), float(2 * d + rng.normal(0, 1))))
        records.append(_record("poor", "fid", f"c{i}", float(score[i]), float(rng.uniform(10, 50)),
                               float(rng.uniform(0, 100))))
    metrics, files = tr.sweep_transfer(records, tmp_path, {"bootstrap": 50, "permutations": 99, "seed": 0})
    assert {p.name for p in files} >= {rk.RANKING_FILE, rk.RANKING_FIGURE}
    table = pd.read_csv(tmp_path / rk.RANKING_FILE)
    assert list(table["rank"]) == [1, 2, 3, 4] and set(table["scores"]) == {"dataset"}
    assert set(table["series"][:2]) == {"good.i_dist", "good.fid"}  # a noiseless and a near-noiseless line
    assert (table["abs_spearman"].diff().dropna() <= 0).all()
    assert (table["abs_spearman_ci_low"] <= table["abs_spearman"]).all()
    assert (table["abs_spearman"] <= table["abs_spearman_ci_high"]).all()
    best = table.set_index("series")
    assert best.loc["good.i_dist", "lodo_rmse"] < 1e-12 < 0.05 < best.loc["poor.i_dist", "lodo_rmse"]
    group = pd.read_csv(tmp_path / tr.DATASETS_FILE).query("series == 'poor.fid'")
    assert best.loc["poor.fid", "lodo_rmse"] == pytest.approx(rk.leave_one_out_errors(group["distance"],
                                                                                         group["score"])[0])
    assert metrics["poor.fid.transfer_lodo_rmse"] == pytest.approx(best.loc["poor.fid", "lodo_rmse"])
    assert_real_png(tmp_path / rk.RANKING_FIGURE)


def test_per_image_cells_rank_by_their_own_rho_and_name_the_distance_they_used(tmp_path):
    def cell(extractor, metric, rho, low, high, distance="i_dist"):
        return {"reference": "/d/ref", "candidate": "/d/cand", "extractor": extractor, "metric": metric,
                "pair": "ref_vs_cand", "config": {"analysis.transfer.distance": distance},
                "values": {metric: 1.0, "transfer_spearman": rho, "transfer_spearman_ci_low": low,
                           "transfer_spearman_ci_high": high, "transfer_n": 40.0}}

    records = [cell("pixels", "fid", -0.2, -0.5, 0.1), cell("lite0", "emd", -0.7, -0.85, -0.5, "metric"),
               cell("lite0", "fid", 0.5, 0.3, 0.7)]
    metrics, files = tr.sweep_transfer(records, tmp_path, {"bootstrap": 50, "permutations": 99, "seed": 0})
    table = pd.read_csv(tmp_path / rk.RANKING_FILE)
    assert list(table["series"]) == ["lite0.emd.transport_cost", "lite0.i_dist", "pixels.i_dist"]
    assert list(table["abs_spearman_ci_low"]) == [0.5, 0.3, 0.0] and table["lodo_rmse"].isna().all()
    assert set(table["candidate"]) == {"cand"} and {p.name for p in files} == {rk.RANKING_FILE, rk.RANKING_FIGURE}


@pytest.mark.slow
def test_a_sweep_over_extractors_and_metrics_ranks_them_on_its_parent_run(tmp_path):
    from mlflow.tracking import MlflowClient

    from dsim.data.images import list_images
    from dsim_testing import tracking_uri

    write_crops(tmp_path / "ref", 40, seed=1, size=32)
    write_crops(tmp_path / "cand", 40, seed=2, size=32)
    from PIL import Image

    rows = ["image,score"] + [f"{ref.relpath},{np.asarray(Image.open(ref.path)).mean() / 255:.4f}"  # brightness
                              for ref in list_images(tmp_path / "cand")]
    (tmp_path / "scores.csv").write_text("\n".join(rows) + "\n")
    run_dsim("-m", "extractor=pixels,efficientnet_lite0", "metric=odist,emd", "pair.reference=ref",
             "pair.candidate=cand", "dataset.root=.", "analysis=transfer", "analysis.transfer.distance=metric",
             f"analysis.transfer.scores={tmp_path / 'scores.csv'}", "analysis.transfer.bootstrap=50",
             "analysis.transfer.permutations=99", "batch_size=16", "progress=false", "device=cpu",
             f"cache_dir={tmp_path / 'cache'}", f"tracking.store_dir={tmp_path / 'mlruns'}", "hydra.sweep.dir=sweep",
             cwd=tmp_path)
    cells = {(c["extractor"], c["metric"]): c["values"]
             for c in (json.loads(p.read_text()) for p in (tmp_path / "sweep").glob("*/result.json"))}
    table = pd.read_csv(tmp_path / "sweep" / "transfer" / rk.RANKING_FILE)
    assert len(table) == 4 and set(table["distance"]) == {"odist.i_dist", "emd.transport_cost"}
    for row in table.itertuples():  # each row is its cell's own coefficient
        metric = row.distance.split(".")[0]
        assert row.spearman == pytest.approx(cells[(row.extractor, metric)]["transfer_spearman"], abs=1e-12)
    parent = (tmp_path / "sweep" / ".dsim_parent_run_id").read_text().strip()
    logged = {a.path for a in MlflowClient(tracking_uri(tmp_path)).list_artifacts(parent, "transfer")}
    assert {"transfer/ranking.csv", "transfer/ranking.png"} <= logged
