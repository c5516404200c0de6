"""The noise floor (``metric.floor``, ``compute(..., floor=True)``): splits, values, the streamed form, refusals."""

import json
import warnings

import numpy as np
import pytest
from dsim_testing import run_dsim, write_crops

import dsim
from dsim import metrics
from dsim.errors import DsimError
from dsim.metrics import FeatureStats, MetricWarning, fid, fid_from_feature_stats
from dsim.metrics.floor import floor_keys, noise_floor, splits, streamed_floor


def test_splits_are_disjoint_seeded_and_sized():
    drawn = splits(101, 30, repeats=7, seed=3)
    assert len(drawn) == 7
    for a, b, c in drawn:
        assert len(a) == 50 and len(b) == len(c) == 30  # B and C: min(101 - 50, 30) rows
        assert not set(a) & set(b) and set(a) | set(b) <= set(range(101)) and set(c) <= set(range(30))
        assert all((np.diff(rows) > 0).all() for rows in (a, b, c))  # sorted, no repeats
    again = splits(101, 30, repeats=7, seed=3)
    assert all((x == y).all() for split, other in zip(drawn, again) for x, y in zip(split, other))
    assert not all((x == y).all() for x, y in zip(drawn[0], splits(101, 30, repeats=7, seed=4)[0]))
    a, b, c = splits(10, 500, repeats=2)[0]
    assert len(a) == len(b) == len(c) == 5


@pytest.mark.parametrize("n_reference, n_candidate, repeats, message", [
    (3, 10, 10, "at least 4 images"), (10, 1, 10, "at least 2 candidate"), (10, 10, 1, "at least 2 repeats")])
def test_too_few_rows_or_repeats_are_one_line(n_reference, n_candidate, repeats, message):
    with pytest.raises(DsimError, match=message):
        splits(n_reference, n_candidate, repeats=repeats)


def test_floor_values_are_the_metric_on_the_drawn_rows():
    """The definition, split by split: A vs B gives the floor, A vs C the value at the floor's sizes."""
    rng = np.random.default_rng(0)
    reference, candidate = rng.normal(size=(120, 6)), rng.normal(0.4, 1.0, size=(90, 6))
    got = metrics.compute("fid", reference, candidate, floor=True, floor_repeats=6, bootstrap_seed=5)
    floors = [fid(reference[a], reference[b])["fid"] for a, b, _ in splits(120, 90, repeats=6, seed=5)]
    at = [fid(reference[a], candidate[c])["fid"] for a, _, c in splits(120, 90, repeats=6, seed=5)]
    assert got["fid_floor"] == pytest.approx(np.median(floors), rel=1e-12)
    assert got["fid_floor_ci_low"] == pytest.approx(np.percentile(floors, 2.5), rel=1e-12)
    assert got["fid_floor_ci_high"] == pytest.approx(np.percentile(floors, 97.5), rel=1e-12)
    assert got["fid_at_floor_n"] == pytest.approx(np.median(at), rel=1e-12)
    assert got["fid_over_floor"] == pytest.approx(np.median(at) / np.median(floors), rel=1e-12)
    assert got["floor_n"] == 60 and got["floor_n_compared"] == 60
    assert got["fid"] == fid(reference, candidate)["fid"]  # the value itself is untouched


def test_two_samples_of_one_distribution_sit_at_the_floor_and_a_shift_rises_above_it():
    """Known properties: same distribution → ratio ≈ 1; the ratio grows with the shift (monotone)."""
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(400, 8))
    ratios = []
    for shift in (0.0, 0.2, 0.5, 1.0):
        candidate = rng.normal(shift, 1.0, size=(400, 8))
        ratios.append(metrics.compute("fid", reference, candidate, floor=True)["fid_over_floor"])
    assert 0.6 < ratios[0] < 1.6
    assert ratios == sorted(ratios) and ratios[-1] > 20 * ratios[0]


def test_the_streamed_floor_equals_the_in_memory_floor():
    rng = np.random.default_rng(2)
    reference, candidate = rng.normal(size=(301, 12)), rng.normal(0.2, 1.1, size=(177, 12))
    in_memory = noise_floor(fid, reference, candidate, fid(reference, candidate), keys=["fid"], seed=4)
    sides = {"reference": reference, "candidate": candidate}

    def stats_of(side, rows):  # in chunks, as the store streams them
        rows_of_side = sides[side][rows]
        return FeatureStats.of_chunks(rows_of_side[i:i + 37] for i in range(0, len(rows_of_side), 37))

    streamed = streamed_floor(stats_of, 301, 177, fid_from_feature_stats, keys=["fid"], seed=4)
    assert streamed.keys() == in_memory.keys()
    for key in streamed:
        assert streamed[key] == pytest.approx(in_memory[key], rel=1e-9), key


def test_an_unbiased_estimator_s_floor_around_zero_gives_no_ratio_and_says_so():
    rng = np.random.default_rng(3)
    reference, candidate = rng.normal(size=(200, 8)), rng.normal(1.0, 1.0, size=(200, 8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = metrics.compute("kid_poly", reference, candidate, floor=True, subset_size=100)
    assert got["kid_poly_floor_ci_low"] <= 0 and np.isnan(got["kid_poly_over_floor"])
    assert got["kid_poly_at_floor_n"] > got["kid_poly_floor_ci_high"]  # still far: read against the upper end
    said = [str(w.message) for w in caught if issubclass(w.category, MetricWarning)]
    assert any("kid_poly_over_floor is undefined" in m and "kid_poly_floor_ci_high" in m for m in said)


def test_every_headline_value_of_prdc_gets_a_floor_and_labels_travel_with_their_rows():
    rng = np.random.default_rng(4)
    reference, candidate = rng.normal(size=(80, 5)), rng.normal(size=(80, 5))
    got = metrics.compute("prdc", reference, candidate, floor=True)
    for name in ("precision", "recall", "density", "coverage"):
        assert all(key in got for key in floor_keys(name))
        assert 0.5 < got[f"{name}_over_floor"] < 1.5  # one distribution: about as close as two reference samples
    labels = np.repeat(["a", "b"], 40)
    values = metrics.compute("otdd", reference, candidate, floor=True, floor_repeats=3,
                             reference_labels=labels, candidate_labels=labels)
    assert np.isfinite(values["otdd_floor"]) and values["otdd_floor"] > 0


@pytest.mark.parametrize("name, message", [("isc", "scores the candidate set alone"),
                                           ("vendi", "scores the candidate set alone"),
                                           ("psnr", "is a paired metric")])
def test_a_metric_without_a_floor_refuses_it_in_one_line(name, message):
    x = np.random.default_rng(0).random((8, 5))
    with pytest.raises(DsimError, match=message):
        metrics.compute(name, x, x, floor=True)


def test_floor_values_have_the_floor_role():
    spec = metrics.lookup("fid")
    assert {spec.role(key) for key in (*floor_keys("fid"), "floor_n", "floor_n_compared")} == {"floor"}
    assert spec.role("fid") == "headline" and spec.role("fid_ci_low") == "interval"


def test_compare_takes_floor_for_feature_arrays():
    rng = np.random.default_rng(5)
    values = dsim.compare(rng.normal(size=(60, 4)), rng.normal(2.0, 1.0, size=(60, 4)), metrics=("fid", "odist"),
                          floor=True)
    assert values["fid"]["fid_over_floor"] > 10 and values["odist"]["odist_over_floor"] > 1


@pytest.mark.slow
def test_a_floored_grid_records_the_floor_in_result_json_mlflow_the_table_and_the_report(tmp_path):
    """metric.floor=true through the dsim command on sets larger than a batch, decode workers on: the streamed
    FID floor and the in-memory PRDC floor reach result.json, MLflow, the printed table and dsim report."""
    write_crops(tmp_path / "a", 72, seed=0, size=64)
    write_crops(tmp_path / "b", 72, seed=1, size=64)
    done = run_dsim("-m", "extractor=pixels", "extractor.size=16", "metric=fid,prdc", "pair.reference=a",
                    "pair.candidate=b", "metric.floor=true", "batch_size=16", "num_workers=2", "progress=false",
                    "device=cpu", "hydra.sweep.dir=sweep", cwd=tmp_path)
    header = next(line for line in done.stdout.splitlines() if line.lstrip().startswith("extractor"))
    assert "floor" in header and "value/floor" in header and "value@floor n" in header
    records = {r["metric"]: r for r in (json.loads(p.read_text()) for p in (tmp_path / "sweep").glob("*/result.json"))}
    fid_record = records["fid"]
    assert fid_record["floor"]["repeats"] == 10 and fid_record["floor"]["sizes"] == {"A": 36, "B and C": 36}
    assert fid_record["value_roles"]["fid_over_floor"] == "floor"
    assert fid_record["values"]["fid_over_floor"] == pytest.approx(
        fid_record["values"]["fid_at_floor_n"] / fid_record["values"]["fid_floor"])
    assert 0.5 < fid_record["values"]["fid_over_floor"] < 2  # two crop sets of the same six photos
    assert "coverage_floor" in records["prdc"]["values"]

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    run = client.get_run(fid_record["mlflow_run_id"])
    assert run.data.metrics["fid_floor"] == pytest.approx(fid_record["values"]["fid_floor"])
    assert run.data.tags["dsim.floor"].startswith("10 splits")
    report = run_dsim("report", "--out", "report", cwd=tmp_path)
    assert "fid_over_floor" in report.stdout and "fid_at_floor_n" in report.stdout


def test_a_statistics_file_reference_has_no_halves_to_split(tmp_path, crops):
    run_dsim("stats", str(crops["a"]), "--extractor", "pixels", "--out", str(tmp_path / "ref.npz"),
             "--cache-dir", str(tmp_path / "cache"), cwd=tmp_path)
    done = run_dsim("extractor=pixels", "metric=fid", f"pair.reference={tmp_path / 'ref.npz'}",
                    f"pair.candidate={crops['b']}", "metric.floor=true", f"cache_dir={tmp_path / 'cache'}",
                    "progress=false", cwd=tmp_path, check=False)
    from dsim_testing import one_line_error

    assert "give the reference folder, or set metric.floor=false" in one_line_error(done)


def test_a_set_against_its_own_copies_compares_other_images():
    """REF against REF (or REF perturbed): C must not hold A's own images, else the value at the floor's sizes
    sinks below the floor (half of C would be A's images) and an unchanged set reads as 0.5 floors."""
    rng = np.random.default_rng(6)
    reference = rng.normal(size=(300, 6))
    own = metrics.compute("fid", reference, reference, floor=True)  # the same object: every row its own copy
    assert 0.7 < own["fid_over_floor"] < 1.4
    blind = metrics.compute("fid", reference, reference.copy(), floor=True)  # copies dsim is not told about
    assert blind["fid_over_floor"] < 0.75
    told = metrics.compute("fid", reference, reference.copy(), floor=True, floor_counterparts=np.arange(300))
    assert told["fid_over_floor"] == own["fid_over_floor"]
    a, _, c = splits(300, 300, counterparts=np.arange(300))[0]
    assert not set(a) & set(c)


def test_counterparts_follow_the_sampled_rows():
    from dsim.metrics._registry import sampled_counterparts

    # candidate rows 0..4 copy reference rows 4, 3, -1, 1, 0; samples keep reference rows [0, 3, 4], candidate [0, 1, 4]
    got = sampled_counterparts(np.array([4, 3, -1, 1, 0]), np.array([0, 3, 4]), np.array([0, 1, 4]))
    assert got.tolist() == [2, 1, 0]
    assert sampled_counterparts(np.array([1, -1]), None, None).tolist() == [1, -1]


@pytest.mark.slow
def test_a_cell_of_a_set_against_itself_perturbed_sits_at_the_floor(tmp_path):
    """Through the cell (streamed FID, perturb=): REF against REF at brightness x1 (unchanged) is exactly as far
    as two samples of REF, 1 floor (C holds copies of B's images, never of A's); darkened to x0.5, far more."""
    write_crops(tmp_path / "a", 60, seed=3, size=64)
    ratios = {}
    for factor in (1, 0.5):
        done = run_dsim("extractor=pixels", "extractor.size=16", "metric=fid", "pair.reference=a", "pair.candidate=a",
                        "perturb=brightness", f"perturb.strength={factor}", "metric.floor=true", "progress=false",
                        "device=cpu", f"hydra.run.dir=run{factor}", cwd=tmp_path)
        assert done.returncode == 0
        ratios[factor] = json.loads((tmp_path / f"run{factor}" / "result.json").read_text())["values"]["fid_over_floor"]
    assert ratios[1] == pytest.approx(1.0, rel=1e-6) and ratios[0.5] > 2


def test_a_sampled_set_against_itself_keeps_its_copies_apart():
    reference = np.random.default_rng(7).normal(size=(400, 5))
    got = metrics.compute("fid", reference, reference, floor=True, max_samples=200)
    assert got["fid_over_floor"] == pytest.approx(1.0, rel=1e-9)  # C = the copies of B's rows exactly
