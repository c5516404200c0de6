"""``analysis=transfer`` (issue 27 item 1): score files in, correlation statistics with intervals and p-values out."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from visual_helpers import assert_real_png

from dsim.analysis import transfer as tr
from dsim.data.naming import match_images
from dsim.errors import DsimError
from dsim.metrics import MetricWarning


def _tied(rng, n):
    """Distances and scores with many ties (scores on a 5-level scale, distances rounded)."""
    d = np.round(rng.uniform(0, 3, n), 1)
    return d, np.round(np.clip(1 - d / 3 + rng.normal(0, 0.2, n), 0, 1) * 4) / 4


@pytest.mark.parametrize("kind", ["random", "tied"])
def test_the_coefficients_are_scipys_on_the_same_pairs(kind):
    rng = np.random.default_rng(7)
    for n in (3, 10, 57, 400):
        d, s = (rng.normal(size=n), rng.normal(size=n)) if kind == "random" else _tied(rng, n)
        got = tr.coefficients(d, s)
        assert got["pearson"] == pytest.approx(stats.pearsonr(d, s).statistic, abs=1e-12)
        assert got["spearman"] == pytest.approx(stats.spearmanr(d, s).statistic, abs=1e-12)
        assert got["kendall"] == pytest.approx(stats.kendalltau(d, s).statistic, abs=1e-12)  # tau-b, ties
        result = tr.statistics(d, s, bootstrap=0, permutations=0)  # the values the record gets
        for name in tr.CORRELATIONS:
            assert result.values[name] == got[name]
        # the vectorised form the permutations use is the same coefficient on a permuted series
        order = rng.permutation(n)
        assert tr._standardised(s[order]) @ tr._standardised(d) == pytest.approx(
            stats.pearsonr(d, s[order]).statistic, abs=1e-12)
        ranked = tr._standardised(stats.rankdata(s))[order] @ tr._standardised(stats.rankdata(d))
        assert ranked == pytest.approx(stats.spearmanr(d, s[order]).statistic, abs=1e-12)


def test_undefined_coefficients_are_nan_and_left_out_of_the_record():
    assert all(np.isnan(v) for v in tr.coefficients([1, 2], [3, 4]).values())
    with pytest.warns(MetricWarning, match="same for every image"):
        result = tr.statistics([1, 2, 3, 4, 5, 6], [1, 1, 1, 1, 1, 1], bootstrap=10, permutations=10)
    record = result.record_values()
    assert "transfer_spearman" not in record and "transfer_spearman_p" not in record
    assert record["transfer_n"] == 6 and record["transfer_slope"] == 0 == record["transfer_slope_ci_high"]


def test_the_slope_is_numpys_least_squares_on_the_scaled_distance():
    rng = np.random.default_rng(3)
    d = rng.uniform(20, 80, 60)
    s = 0.9 - 0.004 * d + rng.normal(0, 0.05, 60)
    scaled = (d - d.min()) / (d.max() - d.min())
    result = tr.statistics(d, s, bootstrap=0, permutations=0)
    slope, intercept = np.polyfit(scaled, s, 1)
    assert result.values["slope"] == pytest.approx(slope, rel=1e-10)
    assert result.values["intercept"] == pytest.approx(intercept, rel=1e-10)
    assert result.values["slope"] == pytest.approx(-0.004 * (d.max() - d.min()), rel=0.25)
    # a given scaling (over every image of the candidate, not only the scored ones) is the one used
    wider = (d - 0) / 100
    assert tr.statistics(d, s, scaled=wider, bootstrap=0, permutations=0).values["slope"] == pytest.approx(
        np.polyfit(wider, s, 1)[0], rel=1e-10)


def test_intervals_contain_the_estimates_and_are_the_same_for_a_seed():
    rng = np.random.default_rng(11)
    d = rng.uniform(size=50)
    s = 1 - d + rng.normal(0, 0.3, 50)
    first = tr.statistics(d, s, bootstrap=200, permutations=50, seed=4)
    again = tr.statistics(d, s, bootstrap=200, permutations=50, seed=4)
    other = tr.statistics(d, s, bootstrap=200, permutations=50, seed=5)
    assert first.values == again.values
    assert np.array_equal(first.band_low, again.band_low)
    for name in tr.INTERVAL_KEYS:
        v = first.values
        assert v[f"{name}_ci_low"] <= v[name] <= v[f"{name}_ci_high"], name
        assert v[f"{name}_ci_low"] < v[f"{name}_ci_high"]
    for name in tr.CORRELATIONS:
        assert -1 <= first.values[f"{name}_ci_low"] and first.values[f"{name}_ci_high"] <= 1
    assert first.values["spearman_ci_low"] != other.values["spearman_ci_low"]
    # the fit's band contains the fitted line at every point
    line = first.values["intercept"] + first.values["slope"] * tr.BAND
    assert np.all(first.band_low <= line + 1e-12) and np.all(line <= first.band_high + 1e-12)


def test_too_few_pairs_for_intervals_is_a_caveat():
    with pytest.warns(MetricWarning, match="no intervals: 5 scored image"):
        result = tr.statistics([1.0, 2.0, 3.0, 4.0, 5.0], [3.0, 1.0, 2.0, 5.0, 4.0], bootstrap=100, permutations=100)
    assert np.isfinite(result.values["spearman"]) and np.isnan(result.values["spearman_ci_low"])
    assert "transfer_spearman_ci_low" not in result.record_values()


def test_permutation_p_values():
    rng = np.random.default_rng(0)
    d = rng.uniform(size=30)
    strong = tr.permutation_pvalues(d, -d ** 2 + rng.normal(0, 0.01, 30), permutations=199, seed=0)
    assert strong == {name: 1 / 200 for name in tr.CORRELATIONS}  # (0 + 1) / (199 + 1): the smallest there is
    assert all(np.isnan(v) for v in tr.permutation_pvalues(d, d, permutations=0).values())  # 0: no p-values
    # independent data: p-values spread over (0, 1], about uniform
    p = np.array([tr.permutation_pvalues(rng.normal(size=25), rng.normal(size=25), permutations=99, seed=i)["spearman"]
                  for i in range(60)])
    assert 0.35 < p.mean() < 0.65 and (p < 0.05).mean() < 0.15 and p.max() > 0.8
    # a seed gives the same p-values, whatever else ran before
    x, y = rng.normal(size=20), rng.normal(size=20)
    assert tr.permutation_pvalues(x, y, permutations=99, seed=1) == tr.permutation_pvalues(x, y, permutations=99, seed=1)


def test_the_chunks_permutations_are_scored_in_change_nothing(monkeypatch):
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=50), rng.normal(size=50)
    whole = tr.permutation_pvalues(x, y, permutations=300, seed=2)
    monkeypatch.setattr(tr, "_CHUNK_FLOATS", 7 * 50)  # chunks of 7 permutations
    assert tr.permutation_pvalues(x, y, permutations=300, seed=2) == whole


def test_few_points_enumerate_every_permutation():
    # n = 5: 120 permutations <= 1000, every one scored; a perfect monotone relation is matched by itself and
    # its reverse only, so p = 2 / 120 for each coefficient (two-sided)
    p = tr.permutation_pvalues([1, 2, 3, 4, 5], [9, 7, 5, 3, 1], permutations=1000)
    assert p == pytest.approx({name: 2 / 120 for name in tr.CORRELATIONS})
    # no relation at all: every permutation is at least as extreme
    assert tr.permutation_pvalues([1, 2, 3, 4, 5], [2, 1, 3, 1, 2], permutations=1000)["spearman"] > 0.5


def test_images_match_by_relpath_stem_and_content_hash():
    relpaths = ["a/001.png", "a/002.png", "b/002.png", "003.jpg", "sub/img.v2.png"]
    hashes = [f"{i:064x}" for i in range(1, 6)]
    names = ["a/001.png", "./003.jpg", "003", "img.v2", "a/002", "002", f"SHA256:{hashes[2].upper()}", "nope.png",
             "sub\\img.v2.png"]
    found, ambiguous = match_images(names, relpaths, hashes)
    assert found.tolist() == [0, 3, 3, 4, 1, -1, 2, -1, 4]
    assert ambiguous == 1  # "002" is a stem of two images: not guessed ("a/002" is a path without extension)


def _frame(n=12):
    return pd.DataFrame({"dataset": "cand", "relpath": [f"{i:03d}.png" for i in range(n)],
                         "image_id": [f"{i:064x}" for i in range(n)], "i_dist": np.arange(n, dtype=float)})


def test_unmatched_rows_are_counted_in_one_warning(tmp_path):
    frame = _frame()
    rows = ["image,score", "000.png,0.9", "001,0.8", f"{2:064x},0.7", "missing.png,0.1", "other/x.png,0.2",
            "003.png,oops", "004.png,0.5", "004.png,0.6"]
    (tmp_path / "s.csv").write_text("\n".join(rows) + "\n")
    scores = tr.read_scores(tmp_path / "s.csv")
    assert scores.kind == "image"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values, unmatched = tr._image_scores(scores, {"cand"}, frame)
    messages = [str(w.message) for w in caught if issubclass(w.category, MetricWarning)]
    assert unmatched == 2
    assert sum("2 of its 8 rows name no image" in m for m in messages) == 1, messages
    assert any("the last one is used" in m for m in messages) and any("no numeric score" in m for m in messages)
    assert values[:5].tolist()[:3] == [0.9, 0.8, 0.7] and np.isnan(values[3]) and values[4] == 0.6


def test_a_dataset_column_keeps_the_candidates_rows(tmp_path):
    (tmp_path / "s.csv").write_text("dataset,image,score\ncand,000.png,1\nother,001.png,2\ncand,001.png,3\n")
    values, unmatched = tr._image_scores(tr.read_scores(tmp_path / "s.csv"), {"cand"}, _frame())
    assert values[:2].tolist() == [1, 3] and unmatched == 0  # rows of other datasets are not "unmatched"
    with pytest.raises(DsimError, match="no row's dataset is the candidate"):
        tr._image_scores(tr.read_scores(tmp_path / "s.csv"), {"elsewhere"}, _frame())


def test_score_file_mistakes_are_one_line_errors(tmp_path):
    cases = {
        "missing": (None, "no such file"),
        "no_score.csv": ("image,f1\na.png,1\n", "no column 'score'"),
        "no_image.csv": ("path,score\na.png,1\n", "no column 'image'"),
        "words.csv": ("image,score\na.png,good\nb.png,bad\n", "no numeric value"),
        "binary.csv": ("\x00\x01\x02", "analysis.transfer.scores"),
    }
    for name, (text, words) in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(DsimError, match=words) as error:
            tr.read_scores(tmp_path / name)
        assert "\n" not in str(error.value) and "analysis.transfer.scores" in str(error.value)
    with pytest.raises(DsimError, match="none of its 1 rows names an image"):
        (tmp_path / "far.csv").write_text("image,score\nelsewhere/a.png,1\n")
        tr._image_scores(tr.read_scores(tmp_path / "far.csv"), {"cand"}, _frame())
    assert tr.read_scores(tmp_path / "no_score.csv", "f1").kind == "image"
    (tmp_path / "datasets.csv").write_text("dataset,score\ncand,0.5\n")
    assert tr.read_scores(tmp_path / "datasets.csv").kind == "dataset"


def test_the_figure_draws_a_fit_only_through_enough_points(tmp_path):
    rng = np.random.default_rng(2)
    d = rng.uniform(size=40)
    panels = []
    for n in (40, 4):  # 4 points: no line, no interval
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MetricWarning)
            result = tr.statistics(d[:n], 1 - d[:n] + rng.normal(0, 0.1, n), bootstrap=50, permutations=20)
        panels.append(tr.Panel(f"n={n}", tr.dv.min_max(d[:n]), 1 - d[:n], result))
    fig = tr.transfer_figure(panels, title="t")
    big, small = fig.axes
    assert any(line.get_label() == "least-squares fit" for line in big.get_lines())
    assert big.collections[-1].get_label() == "95 % band"
    assert not any(line.get_label() == "least-squares fit" for line in small.get_lines())
    assert any("no fit line: 4 point(s)" in text.get_text() for text in small.texts)
    assert len(small.collections[0].get_offsets()) == 4  # the points are drawn all the same
    assert_real_png(tr.transfer_png(tmp_path / "t.png", panels, title="t"))


def _record(candidate, score, distance, fid):
    return {"reference": "/d/ref", "candidate": f"/d/{candidate}", "extractor": "pixels", "metric": "fid",
            "pair": f"ref_vs_{candidate}",
            "values": {"fid": fid, "transfer_score": score, "transfer_distance": distance}}


def test_a_sweep_correlates_per_dataset_scores_across_candidates(tmp_path):
    rng = np.random.default_rng(5)
    distance = np.linspace(10, 50, 8)
    records = [_record(f"c{i}", float(1 - d / 60 + rng.normal(0, 0.01)), float(d), float(3 * d))
               for i, d in enumerate(distance)]
    records.append({**_record("c0", 0.0, 0.0, 0.0), "metric": "kid"})  # c0 again (another metric): kept once
    metrics, files = tr.sweep_transfer(records, tmp_path, {"bootstrap": 50, "permutations": 200, "seed": 0})
    assert metrics["pixels.i_dist.transfer_spearman"] == -1 and metrics["pixels.i_dist.transfer_n"] == 8
    assert metrics["pixels.fid.transfer_spearman"] == -1 and metrics["pixels.fid.transfer_spearman_p"] < 0.01
    assert "pixels.kid.transfer_spearman" not in metrics  # one point only
    points = pd.read_csv(tmp_path / tr.DATASETS_FILE)
    assert len(points[points["series"] == "pixels.i_dist"]) == 8
    assert {p.name for p in files} == {tr.DATASETS_FILE, tr.STATISTICS_FILE, tr.FIGURE_FILE, "ranking.csv",
                                       "ranking.png"}
    assert tr.sweep_transfer_analysis(records, tmp_path, {"analysis": None}) == ({}, [])


def test_the_cell_key_follows_the_score_files_content(tmp_path):
    from dsim_testing import cell_config

    from dsim import configs
    from dsim.cell.key import input_files

    scores = tmp_path / "s.csv"
    scores.write_text("image,score\na.png,1\n")
    config = configs.load(cell_config(tmp_path, ["analysis=transfer", f"analysis.transfer.scores={scores}"]))
    first = input_files(config)
    scores.write_text("image,score\na.png,2\n")
    assert input_files(config) != first and set(first) == {"transfer_scores"}
    assert input_files(configs.load(cell_config(tmp_path, []))) == {}  # other cells' keys are unchanged


def test_analysis_transfer_needs_a_score_file(tmp_path):
    from dsim_testing import cell_config

    from dsim import configs

    with pytest.raises(DsimError, match="analysis=transfer needs a score file"):
        tr.check(configs.load(cell_config(tmp_path, ["analysis=transfer"])))


def test_the_command_line_checks_the_options_of_a_list_of_analyses(tmp_path):
    # analysis=[...] is no runtime choice of Hydra's: the keys of every listed option are known all the same
    from dsim_testing import one_line_error, run_dsim

    done = run_dsim("analysis=[distance,transfer]", "analysis.transfer.seed=-1", "extractor=pixels", "progress=false",
                    f"cache_dir={tmp_path / 'cache'}", f"tracking.store_dir={tmp_path / 'mlruns'}", cwd=tmp_path,
                    check=False)
    assert "analysis.transfer.seed must be an integer >= 0, got -1" in one_line_error(done)


@pytest.mark.slow
def test_a_cell_writes_the_transfer_files_and_values(tmp_path):
    from dsim_testing import run_dsim, write_crops

    from dsim.data.images import list_images

    write_crops(tmp_path / "ref", 40, seed=1, size=32)
    write_crops(tmp_path / "cand", 40, seed=2, size=32)
    files = list_images(tmp_path / "cand")
    rows = ["image,score"]
    for i, ref in enumerate(files):  # every third image by stem, every third by content hash
        name = [ref.relpath, ref.relpath.rsplit(".", 1)[0], ref.sha256][i % 3]
        rows.append(f"{name},{(i * 37 % 40) / 40:.3f}")
    rows += ["not_there.png,0.5", "also/missing.png,0.1"]
    (tmp_path / "scores.csv").write_text("\n".join(rows) + "\n")
    run_dsim("extractor=pixels", "metric=fid", "pair.reference=ref", "pair.candidate=cand", "dataset.root=.",
             "analysis=transfer", f"analysis.transfer.scores={tmp_path / 'scores.csv'}", "analysis.transfer.bootstrap=200",
             "batch_size=16", "progress=false", "device=cpu", f"cache_dir={tmp_path / 'cache'}",
             f"tracking.store_dir={tmp_path / 'mlruns'}", "hydra.run.dir=job", cwd=tmp_path)
    record = json.loads((tmp_path / "job" / "result.json").read_text())
    folder = tmp_path / "job" / "artifacts" / "transfer"
    points = pd.read_csv(folder / "transfer.csv")
    assert len(points) == 40 and list(points.columns[:5]) == ["image", "image_id", "distance", "distance_scaled", "score"]
    assert points["distance"].is_monotonic_increasing and points["distance_scaled"].max() == 1
    values = record["values"]
    assert values["transfer_n"] == 40 and values["transfer_unmatched"] == 2
    for name in ("pearson", "spearman", "kendall", "slope"):
        assert values[f"transfer_{name}_ci_low"] <= values[f"transfer_{name}"] <= values[f"transfer_{name}_ci_high"]
    for name in ("pearson", "spearman", "kendall"):
        assert 0 < values[f"transfer_{name}_p"] <= 1
        assert values[f"transfer_{name}"] == pytest.approx(
            getattr(stats, {"pearson": "pearsonr", "spearman": "spearmanr", "kendall": "kendalltau"}[name])(
                points["distance"], points["score"]).statistic, abs=1e-12)
    assert {"transfer_half_1_score_mean", "transfer_third_3_score_mean"} <= set(values)
    assert sum("2 of its 42 rows name no image" in w["message"] for w in record["warnings"]) == 1
    splits = pd.read_csv(folder / "transfer_splits.csv")
    assert splits[splits["scheme"] == "halves"]["n_scored"].tolist() == [20, 20]
    assert_real_png(folder / "transfer.png")
    from mlflow.tracking import MlflowClient

    from dsim_testing import tracking_uri

    client = MlflowClient(tracking_uri=tracking_uri(tmp_path))
    logged = {a.path for a in client.list_artifacts(record["mlflow_run_id"], "artifacts/transfer")}
    assert logged == {f"artifacts/transfer/{name}" for name in ("transfer.csv", "transfer_splits.csv", "transfer.png")}
    assert client.get_run(record["mlflow_run_id"]).data.metrics["transfer_spearman"] == values["transfer_spearman"]


@pytest.mark.slow
def test_a_sweep_over_candidates_with_per_dataset_scores(tmp_path):
    from dsim_testing import run_dsim, write_crops

    write_crops(tmp_path / "ref", 12, seed=1, size=32)
    names = [f"c{i}" for i in range(6)]
    for i, name in enumerate(names):
        write_crops(tmp_path / name, 8, seed=10 + i, size=32)
    (tmp_path / "scores.csv").write_text("dataset,score\n" + "".join(f"{n},{0.9 - 0.1 * i}\n" for i, n in
                                                                     enumerate(names)) + "elsewhere,0.3\n")
    run_dsim("-m", "extractor=pixels", "metric=fid", "pair.reference=ref", f"pair.candidate={','.join(names)}",
             "dataset.root=.", "analysis=transfer", f"analysis.transfer.scores={tmp_path / 'scores.csv'}",
             "analysis.transfer.bootstrap=50", "progress=false", "device=cpu", f"cache_dir={tmp_path / 'cache'}",
             f"tracking.store_dir={tmp_path / 'mlruns'}", "hydra.sweep.dir=sweep", cwd=tmp_path)
    cells = [json.loads(p.read_text()) for p in sorted((tmp_path / "sweep").glob("*/result.json"))]
    assert len(cells) == 6 and all({"transfer_score", "transfer_distance"} <= set(c["values"]) for c in cells)
    table = pd.read_csv(tmp_path / "sweep" / "transfer" / "transfer_statistics.csv")
    assert set(table["series"]) == {"pixels.i_dist", "pixels.fid"} and (table["n"] == 6).all()
    points = pd.read_csv(tmp_path / "sweep" / "transfer" / "transfer_datasets.csv")
    mine = points[points["series"] == "pixels.i_dist"].sort_values("dataset")
    assert mine["score"].tolist() == pytest.approx([0.9 - 0.1 * i for i in range(6)])
    expected = stats.spearmanr(mine["distance"], mine["score"]).statistic
    assert table.set_index("series").loc["pixels.i_dist", "spearman"] == pytest.approx(expected, abs=1e-12)
    assert_real_png(tmp_path / "sweep" / "transfer" / "transfer.png")
