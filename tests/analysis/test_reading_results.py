"""Reading results (issue 26 item 7): the report's colours, column labels and rows; one colour per dataset; fit lines."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex, to_rgba

from dsim.analysis import distance_views as dv
from dsim.analysis import embedding_map as em
from dsim.analysis import palette, plots, report

DEFAULTS = {"metric.bootstrap": "0", "perturb.name": "none", "perturb.strength": "0", "device": "cpu"}


def _run(run_id, metric, values, *, pair="a_vs_b", extractor="pixels", fingerprints=("fa", "fb"), start=0,
         params=None):
    tags = {"dsim.metric": metric, "dsim.extractor": extractor, "dsim.pair": pair, "dsim.headline": ",".join(values)}
    if fingerprints:
        tags.update({"dsim.reference.fingerprint": fingerprints[0], "dsim.candidate.fingerprint": fingerprints[1]})
    return {"run_id": run_id, "tags": tags, "params": {**DEFAULTS, **(params or {})}, "metrics": dict(values),
            "status": "FINISHED", "experiment": "dsim", "start_time": start}


def _table(runs):
    return report.pivot(report.long_frame(runs))


# ---------------------------------------------------------------------------------------------------
# (a) heatmap colours by direction


def _opposite_directions():
    """fid (lower is better) and prdc's precision (higher is better) of three pairs: p1 best in both, p3 worst."""
    runs = []
    for i, (fid, precision) in enumerate([(2.0, 0.9), (40.0, 0.5), (90.0, 0.1)], start=1):
        data = (f"r{i}", f"c{i}")
        runs.append(_run(f"f{i}", "fid", {"fid": fid}, pair=f"p{i}", fingerprints=data))
        runs.append(_run(f"p{i}", "prdc", {"precision": precision}, pair=f"p{i}", fingerprints=data))
    return _table(runs)


def test_heatmap_scores_every_column_from_its_best_to_its_worst_by_the_metrics_direction():
    table = _opposite_directions()
    directions = report.column_directions(table)
    assert directions == {("pixels", "fid"): False, ("pixels", "precision"): True}
    scores = plots.badness(table, directions)
    assert scores[("pixels", "fid")].tolist() == pytest.approx([0.0, 38 / 88, 1.0])
    assert scores[("pixels", "precision")].tolist() == pytest.approx([0.0, 0.5, 1.0])  # highest precision: 0, best
    colours = plots.cell_colours(table, directions)
    assert (colours[0, 0] == colours[0, 1]).all() and (colours[2, 0] == colours[2, 1]).all()  # one shared colormap
    assert not (colours[0, 0] == colours[2, 0]).all()


def test_heatmap_text_is_black_or_white_by_background_and_the_colour_bar_states_the_direction():
    assert plots.text_colour(to_rgba("#ffffcc")) == "black" and plots.text_colour(to_rgba("#313695")) == "white"
    table = _opposite_directions()
    directions = report.column_directions(table)
    fig = plots.pivot_figure(table, title="t", directions=directions)
    colours = plots.cell_colours(table, directions)
    texts = {(t.get_position(), t.get_text()): t.get_color() for t in fig.axes[0].texts}
    assert len(texts) == 6
    for (x, y), text in texts:
        assert texts[((x, y), text)] == plots.text_colour(colours[y, x])
    assert {"black", "white"} <= set(texts.values())
    bar = fig.axes[1]
    assert "better ← → worse" in bar.get_xlabel()
    assert [t.get_text() for t in bar.get_xticklabels()] == ["better", "worse"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["pixels · fid ↓", "pixels · precision ↑"]


def test_a_value_without_declared_direction_is_grey_and_said_so():
    assert report.higher_is_better("fid_std") is None and report.higher_is_better("n_pairs") is None
    assert report.higher_is_better("psnr [pairing.method=random]") is True
    table = pd.DataFrame({("pixels", "fid"): [1.0, 2.0], ("pixels", "fid_std"): [0.1, 0.3]}, index=["p", "q"])
    directions = report.column_directions(table)
    assert plots.badness(table, directions)[("pixels", "fid_std")].isna().all()
    colours = plots.cell_colours(table, directions)
    assert (colours[:, 1] == to_rgba(plots.NEUTRAL_COLOUR)).all() and not (colours[:, 0] == colours[0, 1]).all()
    fig = plots.pivot_figure(table, title="t", directions=directions)
    assert fig.axes[0].get_xticklabels()[1].get_text().endswith("?")
    assert "no declared direction" in fig.axes[1].get_xlabel()


# ---------------------------------------------------------------------------------------------------
# (b) column labels


def test_column_labels_name_only_the_keys_that_vary_in_the_column():
    runs = [
        _run("f0", "fid", {"fid": 5.0}, start=1),
        _run("f1", "fid", {"fid": 7.0}, start=2, params={"perturb.name": "blur", "perturb.strength": "2"}),
        _run("k0", "kid_poly", {"kid_poly": 0.1}, start=3),
        _run("k1", "kid_poly", {"kid_poly": 0.2}, start=4, params={"metric.bootstrap": "100"}),
        _run("s0", "psnr", {"psnr": 30.0}, extractor="none", start=5),
    ]
    assert list(_table(runs).columns) == [
        ("none", "psnr"),
        ("pixels", "fid [perturb.name=blur perturb.strength=2]"),
        ("pixels", "fid [perturb.name=none perturb.strength=0]"),
        ("pixels", "kid_poly [metric.bootstrap=0]"),
        ("pixels", "kid_poly [metric.bootstrap=100]"),
    ]


def test_a_column_where_nothing_varies_is_labelled_by_the_metric_alone():
    runs = [_run("f1", "fid", {"fid": 5.0}), _run("f2", "fid", {"fid": 6.0}, pair="a_vs_c", fingerprints=("fa", "fc"))]
    table = _table(runs)
    assert list(table.columns) == [("pixels", "fid")] and list(table.index) == ["a_vs_b", "a_vs_c"]


# ---------------------------------------------------------------------------------------------------
# (e) rows follow the data's fingerprints


def test_runs_of_the_same_fingerprints_are_one_row_named_after_the_dataset_not_the_stats_file():
    runs = [
        _run("stats", "fid", {"fid": 3.0}, pair="ref_vs_b", start=1, params={"pair.reference": "/s/ref.npz"}),
        _run("folder", "kid_poly", {"kid_poly": 0.1}, pair="photos_vs_b", start=2,
             params={"pair.reference": "photos"}),
        _run("named", "prdc", {"precision": 0.7}, pair="my_pair", start=3, params={"pair.name": "my_pair"}),
        _run("other", "fid", {"fid": 9.0}, pair="photos_vs_c", fingerprints=("fa", "fc"), start=4),
        _run("legacy", "fid", {"fid": 8.0}, pair="old_pair", fingerprints=None, start=5),
    ]
    table = _table(runs)
    assert list(table.index) == ["old_pair", "photos_vs_b", "photos_vs_c"]
    assert list(table.columns) == [("pixels", "fid"), ("pixels", "kid_poly"), ("pixels", "precision")]
    assert table.loc["photos_vs_b"].tolist() == [3.0, 0.1, 0.7]
    assert report.row_names(runs[::-1]) == report.row_names(runs)  # the name does not depend on the order read


def test_the_same_value_of_the_same_data_under_two_pair_names_is_one_cell_the_newest():
    runs = [_run("old", "fid", {"fid": 3.0}, pair="photos_vs_b", start=1, params={"pair.reference": "photos"}),
            _run("new", "fid", {"fid": 3.5}, pair="ref_vs_b", start=2, params={"pair.reference": "ref.npz"})]
    table = _table(runs)
    assert table.shape == (1, 1) and table.loc["photos_vs_b", ("pixels", "fid")] == 3.5


def test_different_data_under_one_pair_name_stay_two_rows_told_apart_by_fingerprint():
    runs = [_run("one", "fid", {"fid": 3.0}, pair="mine", fingerprints=("aaaaaaaa11", "bbbbbbbb22"), start=1),
            _run("two", "fid", {"fid": 7.0}, pair="mine", fingerprints=("aaaaaaaa11", "cccccccc33"), start=2)]
    table = _table(runs)
    assert list(table.index) == ["mine [aaaaaaaa/bbbbbbbb]", "mine [aaaaaaaa/cccccccc]"]
    assert table[("pixels", "fid")].tolist() == [3.0, 7.0]


# ---------------------------------------------------------------------------------------------------
# (c) one colour per dataset


def _points():
    labels = ["photos (reference)"] * 5 + ["render (candidate)"] * 5 + ["moon"] * 4
    datasets = ["photos"] * 5 + ["render"] * 5 + ["moon"] * 4
    return pd.DataFrame({"label": labels, "dataset": datasets, "relpath": [f"{i}.png" for i in range(14)],
                         "status": "", "note": ""})


def test_a_dataset_has_the_same_colour_on_the_umap_map_its_page_and_the_violins():
    points = _points()
    coords = np.random.default_rng(0).normal(size=(len(points), 2))
    expected = {name: palette.dataset_colour(name) for name in ("photos", "render", "moon")}
    assert len(set(expected.values())) == 3  # else this test could not tell the datasets' colours apart

    ax = em.map_figure(points, coords, title="map").axes[0]
    dataset_of = dict(zip(points["label"], points["dataset"]))
    on_map = {dataset_of[c.get_label()]: to_hex(c.get_facecolor()[0]) for c in ax.collections}
    page = {dataset_of[t.name]: t.marker.color for t in em._traces(points, coords, 2, np.zeros(len(points), int))}

    rng = np.random.default_rng(1)
    groups = {name: rng.normal(size=20) for name in ("moon", "render", "photos")}  # another order than the map's
    bodies = [c for c in dv.violin_figure(groups, title="v").axes[0].collections if isinstance(c, PolyCollection)]
    violins = {name: to_hex(body.get_facecolor()[0]) for name, body in zip(groups, bodies)}
    assert on_map == page == violins == expected


def test_entries_of_one_colour_get_different_markers():
    points = _points()
    points.loc[5:9, "dataset"] = "photos"  # the same dataset on both sides
    styles = em.legend_styles(points)
    assert styles["photos (reference)"][0] == styles["render (candidate)"][0]
    assert [rank for _, rank in styles.values()] == [0, 1, 0]
    markers = [t.marker.symbol for t in em._traces(points, np.zeros((14, 2)), 2, np.zeros(14, int))]
    assert markers[0] != markers[1]
    assert palette.marker_ranks(["a", "b", "c", "a"], colour_of=lambda name: "same") == {"a": 0, "b": 1, "c": 2}


# ---------------------------------------------------------------------------------------------------
# (d) fit lines only through enough points


def test_a_fit_line_needs_enough_points_and_a_panel_without_one_says_why():
    rng = np.random.default_rng(0)
    few, many = rng.normal(size=3), rng.normal(size=8)
    stats = {"pearson_r": 0.5, "pearson_p": 0.1, "spearman_rho": 0.4, "n": 3}
    series = [("few", few * 2, few, stats), ("many", many * 2, many, stats), ("flat", many, np.ones(8), stats)]
    fig = plots.entropy_figure(series, title="t", xlabel="x")
    few_ax, many_ax, flat_ax = fig.axes
    assert len(few_ax.lines) == 0 and len(many_ax.lines) == 1 and len(flat_ax.lines) == 0
    assert [len(ax.collections[0].get_offsets()) for ax in fig.axes] == [3, 8, 8]  # every point drawn
    assert [t.get_text() for t in few_ax.texts] == [f"no fit line: 3 point(s), a line needs {plots.MIN_FIT_POINTS}"]
    assert "same x" in flat_ax.texts[0].get_text() and len(many_ax.texts) == 0
    assert plots.MIN_FIT_POINTS == 5
    assert plots.no_fit_reason([1, 2, 3, 4, np.nan, 6], [1, 2, 3, 4, 5, 6]) is None  # 5 finite pairs
    assert plots.no_fit_reason([1, 2, 3, 4, 5, 6], [1, 2, np.nan, 4, 5, np.inf]) is not None  # 4 finite pairs
