"""Sorted-distance splits, score files and moving averages, on small hand-checked tables."""

import numpy as np
import pandas as pd
import pytest
from visual_helpers import assert_real_png

from dsim.analysis import distance_views as dv
from dsim.errors import DsimError


def test_split_labels_cut_the_sorted_values_into_consecutive_near_equal_parts():
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert dv.split_labels(values, 2).tolist() == [2, 1, 1, 1, 2]  # sizes 3, 2: the larger part first
    assert dv.split_labels(values, 3).tolist() == [3, 1, 2, 1, 2]  # sizes 2, 2, 1
    labels = dv.split_labels(np.random.default_rng(0).normal(size=100), 3)
    assert np.bincount(labels).tolist() == [0, 34, 33, 33]


def test_min_max_and_moving_average():
    assert dv.min_max([2.0, 4.0, 3.0]).tolist() == [0.0, 1.0, 0.5]
    assert dv.min_max([7.0, 7.0]).tolist() == [0.0, 0.0]
    assert dv.moving_average([1, 2, 3, 4, 5], 3).tolist() == [1.5, 2.0, 3.0, 4.0, 4.5]
    assert dv.score_window(5) == 1 and dv.score_window(25) == 2 and dv.score_window(1000) == 100


def _frame():
    rng = np.random.default_rng(1)
    return pd.DataFrame({"dataset": ["s"] * 12 + ["t"] * 7, "relpath": [f"{i}.png" for i in range(19)],
                         "i_dist": np.concatenate([rng.uniform(10, 20, 12), rng.uniform(30, 60, 7)])})


def test_split_table_by_hand():
    frame = dv.with_splits(_frame())
    table = dv.split_table(frame)
    assert len(table) == 10 and list(table.columns[:4]) == ["dataset", "scheme", "split", "n"]
    t = frame[frame["dataset"] == "t"].sort_values("i_dist")["i_dist"].to_numpy()
    thirds = table[(table["dataset"] == "t") & (table["scheme"] == "thirds")]
    assert thirds["n"].tolist() == [3, 2, 2]
    assert thirds["i_dist_mean"].tolist() == pytest.approx([t[:3].mean(), t[3:5].mean(), t[5:].mean()])
    assert thirds["i_dist_std"].tolist() == pytest.approx([t[:3].std(ddof=1), t[3:5].std(ddof=1), t[5:].std(ddof=1)])
    assert thirds["i_dist_min"].iat[0] == t[0] and thirds["i_dist_max"].iat[2] == t[-1]


def test_scores_join_by_relpath_and_dataset(tmp_path):
    frame = dv.with_splits(_frame())
    (tmp_path / "scores.csv").write_text("relpath,f1,dataset\n0.png,0.9,s\n1.png,0.1,s\n0.png,0.5,t\n13.png,0.3,t\n")
    scores = dv.read_score_file(tmp_path / "scores.csv", "f1")
    out = dv.with_moving_average(dv.with_scores(frame, scores))
    assert out["score"].notna().sum() == 3  # 0.png of t does not exist in t
    assert out.loc[out["relpath"] == "13.png", "score"].iat[0] == 0.3
    table = dv.split_table(out)
    assert {"n_scored", "score_mean", "score_std"} <= set(table.columns)
    assert table[table["scheme"] == "halves"]["n_scored"].sum() == 3
    assert_real_png(dv.score_png(tmp_path / "score.png", out, title="score"))
    assert_real_png(dv.violin_png(tmp_path / "violin.png", {d: g["i_dist"] for d, g in out.groupby("dataset")},
                                  title="violins"))


def test_score_file_errors_are_one_line(tmp_path):
    with pytest.raises(DsimError, match="no such file"):
        dv.read_score_file(tmp_path / "nope.csv")
    (tmp_path / "bad.csv").write_text("path,score\na.png,1\n")
    with pytest.raises(DsimError, match="no column 'relpath'"):
        dv.read_score_file(tmp_path / "bad.csv")
    (tmp_path / "other.csv").write_text("relpath,score\nelsewhere/a.png,1\n")
    with pytest.raises(DsimError, match="none of its 1 rows matches"):
        dv.with_scores(dv.with_splits(_frame()), dv.read_score_file(tmp_path / "other.csv"))
