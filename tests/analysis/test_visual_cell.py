"""``analysis=[umap,distance]`` on one cell: files, MLflow artifacts, cached embeddings, the planted images found."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from visual_helpers import MAGENTAS, MOONS
from mlflow.tracking import MlflowClient
from visual_helpers import assert_real_png, count_colour, tracking_uri

from dsim.analysis import embedding_map as em
from dsim.embeddings.embed import embed
from dsim.metrics import odist, prdc

UMAP_FILES = {"umap.html", "umap_2d.png", "umap_3d.png", "umap_points.csv", "missed_reference.csv",
              "missed_reference.png", "far_candidate.csv", "far_candidate.png"}
DISTANCE_FILES = {"distance_per_image.csv", "distance_splits.csv", "distance_violin.png", "distance_score.png"}
N_REF, N_CAND, N_EXTRA = 34, 34, 12


def _features(cell, name):
    return embed(cell["record"][name] if name in ("reference", "candidate") else name, "pixels",
                 cache_dir=cell["cfg"]["cache_dir"], device="cpu", progress=False)


def test_every_view_is_written_and_logged_on_the_cells_run(analysed_cell):
    artifacts = analysed_cell["artifacts"]
    assert UMAP_FILES | DISTANCE_FILES <= {p.name for p in artifacts.iterdir()}
    client = MlflowClient(tracking_uri=tracking_uri(analysed_cell["tmp"]))
    logged = {Path(a.path).name for a in client.list_artifacts(analysed_cell["record"]["mlflow_run_id"], "artifacts")}
    assert UMAP_FILES | DISTANCE_FILES <= logged


def test_views_come_from_the_cache_not_a_second_embedding(analysed_cell):
    calls = analysed_cell["embed_calls"]
    assert {name for name, _ in calls} == {"ref", "cand", "extra"}
    assert all(n_computed == 0 for _, n_computed in calls), calls
    # the runner embedded the pair (first time), the analysis found all of it in the cache
    assert analysed_cell["record"]["embedded"] == {"reference": N_REF, "candidate": N_CAND}


def test_missed_and_far_images_are_the_planted_ones(analysed_cell):
    artifacts = analysed_cell["artifacts"]
    missed = pd.read_csv(artifacts / "missed_reference.csv")
    far = pd.read_csv(artifacts / "far_candidate.csv")
    assert sorted(missed["relpath"][:4]) == MOONS  # most distant first
    assert sorted(far["relpath"][:4]) == MAGENTAS
    assert (missed["reach"] >= 1 - 1e-4).all() and (far["reach"] >= 1 - 1e-4).all()
    assert missed["reach"].is_monotonic_decreasing and far["reach"].is_monotonic_decreasing
    columns = {"knn_radius", "nearest_candidate", "nearest_candidate_distance", "umap2_x", "umap3_z"}
    assert columns <= set(missed.columns)
    assert (missed["nearest_candidate_distance"] >= missed["knn_radius"]).all()  # no candidate inside the ball

    # the same counts as PRDC's coverage and precision on the cached features (k = 3)
    values = prdc(_features(analysed_cell, "reference").features, _features(analysed_cell, "candidate").features,
                  nearest_k=3)
    assert len(missed) == round((1 - values["coverage"]) * N_REF)
    assert len(far) == round((1 - values["precision"]) * N_CAND)

    points = pd.read_csv(artifacts / "umap_points.csv")
    assert len(points) == N_REF + N_CAND + N_EXTRA
    assert points.groupby("role").size().to_dict() == {"reference": N_REF, "candidate": N_CAND, "extra": N_EXTRA}
    assert (points["status"] == "missed").sum() == len(missed) and (points["status"] == "far").sum() == len(far)
    coords = points[[c for c in points.columns if c.startswith("umap")]].to_numpy()
    assert coords.shape[1] == 5 and np.isfinite(coords).all()


def test_pngs_have_real_content(analysed_cell):
    artifacts = analysed_cell["artifacts"]
    for name in sorted(n for n in UMAP_FILES | DISTANCE_FILES if n.endswith(".png")):
        assert_real_png(artifacts / name)
    for name in ("umap_2d.png", "umap_3d.png"):  # the missed images are drawn, in their colour
        assert count_colour(assert_real_png(artifacts / name), em.MISSED_COLOUR) > 30, name
    assert count_colour(assert_real_png(artifacts / "far_candidate.png"), "#ff00e6", tolerance=60) > 5000  # magenta
    moons = assert_real_png(artifacts / "missed_reference.png")
    grey = (np.ptp(moons, axis=2) < 8) & (moons.mean(axis=2) > 60) & (moons.mean(axis=2) < 200)
    assert grey.sum() > 5000  # the grey lunar surface


def test_distance_views_reuse_the_cells_odist_and_add_the_extra_candidate(analysed_cell):
    artifacts = analysed_cell["artifacts"]
    frame = pd.read_csv(artifacts / "distance_per_image.csv")
    assert frame.groupby("dataset").size().to_dict() == {"cand": N_CAND, "extra": N_EXTRA}
    cell_table = pd.read_csv(artifacts / "per_image_candidate.csv")
    cand = frame[frame["dataset"] == "cand"]
    assert cand["relpath"].tolist() == cell_table["relpath"].tolist()
    assert np.allclose(cand["i_dist"], cell_table["i_dist"], rtol=1e-12)
    assert np.mean(cand["i_dist"]) == pytest.approx(analysed_cell["record"]["values"]["odist"], rel=1e-9)
    extra = frame[frame["dataset"] == "extra"]
    ref = _features(analysed_cell, "reference").features
    extra_folder = str(analysed_cell["cfg"]["analysis"]["umap"]["datasets"][0])
    expected = odist(ref, _features(analysed_cell, extra_folder).features,
                     n_components=10).per_image["candidate"]["i_dist"]
    assert np.allclose(extra["i_dist"], expected, rtol=1e-9)
    for _, group in frame.groupby("dataset"):
        assert group["i_dist_scaled"].min() == 0 and group["i_dist_scaled"].max() == 1
        assert sorted(group["rank"]) == list(range(1, len(group) + 1))
        near = group.nsmallest(len(group) // 2 + len(group) % 2, "i_dist")
        assert (near["half"] == 1).all()

    splits = pd.read_csv(artifacts / "distance_splits.csv")
    assert len(splits) == 2 * (2 + 3)
    for (dataset, scheme), rows in splits.groupby(["dataset", "scheme"]):
        group = frame[frame["dataset"] == dataset]
        assert rows["n"].sum() == len(group)
        column = {"halves": "half", "thirds": "third"}[scheme]
        for _, row in rows.iterrows():
            part = group[group[column] == row["split"]]
            assert row["i_dist_mean"] == pytest.approx(part["i_dist"].mean())
            assert row["i_dist_std"] == pytest.approx(part["i_dist"].std(ddof=1))
        assert rows["i_dist_mean"].is_monotonic_increasing


def test_score_file_gives_split_scores_and_a_moving_average(analysed_cell):
    frame = pd.read_csv(analysed_cell["artifacts"] / "distance_per_image.csv")
    cand = frame[frame["dataset"] == "cand"]
    assert cand["score"].isna().sum() == 2 and frame[frame["dataset"] == "extra"]["score"].isna().all()
    scored = cand[cand["score"].notna()].sort_values("i_dist")
    window = max(1, len(scored) // 10)
    expected = scored["score"].rolling(window, center=True, min_periods=1).mean()
    assert np.allclose(scored["score_moving_average"], expected)
    splits = pd.read_csv(analysed_cell["artifacts"] / "distance_splits.csv")
    halves = splits[(splits["dataset"] == "cand") & (splits["scheme"] == "halves")]
    assert halves["n_scored"].sum() == len(scored)
    assert halves["score_mean"].tolist() == pytest.approx(
        [scored[scored["half"] == part]["score"].mean() for part in (1, 2)])
