"""Paired metrics as grid cells (in process): the run record, tables, plots, entropy bias, random weights.

Includes acceptance item 7: JPEG-compressed copies of real photographs, paired by name, give PSNR values
that fall as image entropy rises (clearly negative Pearson r).
"""

import shutil

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from paired_helpers import cell_config, photo_tiles, tracking_uri, write_jpeg_copies, write_pngs

from dsim.analysis import within_run
from dsim.cell import CellOutput, SideSummary
from dsim.pipeline import run_cell
from dsim.cell import paired as paired_runner
from dsim.cell.context import resolve_dataset
from dsim.configs import CellConfig
from dsim.errors import DsimError
from dsim.metrics import METRICS
from dsim.metrics._registry import register
from dsim.metrics.paired import cosine_distance

ENTROPY_VALUES = {"entropy_pearson_r", "entropy_pearson_p", "entropy_spearman_rho", "entropy_n"}
PSNR_ENTROPY = {f"psnr.{key}" for key in ENTROPY_VALUES}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One cache and MLflow store for the cells of this module."""
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="module")
def jpeg_run(store):
    """17 bundled photos × 4 tiles (68 images, 128 px) vs their JPEG copies at quality 30; psnr, by_name."""
    tmp = store
    write_pngs(tmp / "photos", photo_tiles())
    write_jpeg_copies(tmp / "photos", tmp / "photos_q30", quality=30)
    cfg = cell_config(tmp, ["metric=psnr", "pairing=by_name", f"pair.reference={tmp / 'photos'}",
                            f"pair.candidate={tmp / 'photos_q30'}"])
    record = run_cell(cfg, tmp / "job")
    return tmp, record


def test_jpeg_psnr_falls_with_entropy_on_real_photos(jpeg_run):
    _, record = jpeg_run
    values = record["values"]
    assert values["n_pairs"] == values["psnr.entropy_n"] == 68
    assert values["psnr.entropy_pearson_r"] < -0.6 and values["psnr.entropy_pearson_p"] < 1e-6
    assert values["psnr.entropy_spearman_rho"] < -0.5
    assert 20 < values["psnr_worst"] < values["psnr_median"] < values["psnr_best"] < 60


def test_paired_cell_takes_metric_bootstrap_like_a_distribution_cell(jpeg_run):
    tmp, plain = jpeg_run
    cfg = cell_config(tmp, ["metric=psnr", "pairing=by_name", f"pair.reference={tmp / 'photos'}",
                            f"pair.candidate={tmp / 'photos_q30'}", "metric.bootstrap=50"])
    values = run_cell(cfg, tmp / "job_bootstrap")["values"]
    assert values["psnr"] == plain["values"]["psnr"]
    assert values["psnr_ci_low"] < values["psnr"] < values["psnr_ci_high"]
    assert "n_pairs_ci_low" not in values


def test_paired_record_tables_plots_and_mlflow_run(jpeg_run):
    tmp, record = jpeg_run
    assert (record["extractor"], record["metric"], record["pair"]) == ("none", "psnr", "photos_vs_photos_q30")
    assert record["random_weights"] is False and record["n_reference"] == record["n_candidate"] == 68
    assert record["n_skipped"] == 0
    assert set(record["values"]) == {"psnr", "psnr_median", "psnr_best", "psnr_worst", "n_pairs"} | PSNR_ENTROPY
    artifacts = tmp / "job" / "artifacts"
    pairs = pd.read_csv(artifacts / "pairs.csv")
    assert len(pairs) == 68 and (pairs["candidate"].str.replace(".jpg", "") == pairs["reference"].str.replace(".png", "")).all()
    assert np.allclose(pairs["entropy"], (pairs["entropy_candidate"] + pairs["entropy_reference"]) / 2)
    assert pairs["psnr"].mean() == pytest.approx(record["values"]["psnr"])
    matches = pd.read_csv(artifacts / "matches.csv")
    assert list(matches["group"]) == ["best"] * 3 + ["average"] * 3 + ["worst"] * 3
    assert matches["psnr"].iloc[0] == record["values"]["psnr_best"] and matches["psnr"].iloc[6] == record["values"]["psnr_worst"]
    for png in ("entropy_scatter.png", "matches.png"):
        assert (artifacts / png).read_bytes()[:4] == b"\x89PNG"

    client = MlflowClient(tracking_uri=tracking_uri(tmp))
    run = client.get_run(record["mlflow_run_id"])
    assert run.data.metrics["psnr.entropy_pearson_r"] == pytest.approx(record["values"]["psnr.entropy_pearson_r"])
    assert run.data.params["pairing.method"] == "by_name"
    logged = {f.path for f in client.list_artifacts(run.info.run_id, "artifacts")}
    assert {"artifacts/pairs.csv", "artifacts/matches.png", "artifacts/entropy_scatter.png"} <= logged


def test_a_second_run_reads_entropies_from_the_cache(jpeg_run, monkeypatch):
    """Same inputs, same numbers; and no image is measured twice."""
    tmp, record = jpeg_run
    import dsim.cell.paired as module

    monkeypatch.setattr(module.EntropyCache, "put", lambda *a: pytest.fail("entropy recomputed"))
    cfg = cell_config(tmp, ["metric=psnr", "pairing=by_name", f"pair.reference={tmp / 'photos'}",
                            f"pair.candidate={tmp / 'photos_q30'}"])
    again = run_cell(cfg, tmp / "job2")
    assert again["values"] == record["values"]


def _few(crops, folder, n=8):
    folder.mkdir()
    for path in sorted(crops["a"].glob("*.png"))[:n]:
        shutil.copy(path, folder)
    return folder


def test_random_weights_anywhere_in_a_paired_cell_mark_the_record(tmp_path, crops, store):
    ref = _few(crops, tmp_path / "ref")
    write_jpeg_copies(ref, tmp_path / "a_q20", quality=20)
    common = [f"pair.reference={ref}", f"pair.candidate={tmp_path / 'a_q20'}", "pairing=nearest",
              "pairing.extractor=pixels"]
    record = run_cell(cell_config(store, ["metric=lpips_alex", "metric.params.weights=random", *common]),
                      tmp_path / "lpips")
    assert record["extractor"] == "lpips_alex" and record["random_weights"] is True
    assert record["weights_checksum"].startswith("random")
    assert record["values"]["match_distance_mean"] < 0.01 and record["values"]["n_pairs"] == 8
    run = MlflowClient(tracking_uri=tracking_uri(store)).get_run(record["mlflow_run_id"])
    assert run.data.tags["dsim.warning"].startswith("RANDOM WEIGHTS")
    assert run.data.params["pairing.resolved_extractor"] == "pixels"
    pairs = pd.read_csv(tmp_path / "lpips" / "artifacts" / "pairs.csv")
    assert (pairs["candidate"].str[:3] == pairs["reference"].str[:3]).all()     # matched to their originals

    # a pixel metric has no network of its own: the random pairing extractor alone marks the record
    record = run_cell(cell_config(store, ["metric=psnr", *common[:3], "pairing.extractor=efficientnet_lite0",
                                             "pairing.weights=random"]), tmp_path / "psnr")
    assert record["extractor"] == "none" and record["random_weights"] is True


def test_embedding_metrics_use_the_embedding_cache(tmp_path, crops, monkeypatch):
    """The DreamSim route (cosine distance of cached embeddings), exercised with the pixels extractor."""
    from dsim.embeddings.embed import embed

    def pixels_cosine(reference, candidate):
        """Cosine distance of 16×16 pixel vectors."""

    monkeypatch.setitem(METRICS, "pixels_cosine", None)  # the test's own metric is gone afterwards
    del METRICS["pixels_cosine"]
    spec = register("pixels_cosine", pixels_cosine, higher_is_better=False, kind="paired", embedding="pixels",
                    aligned=False)
    cfg = cell_config(tmp_path, ["metric=psnr", "pairing=random", "pairing.seed=5"])
    cfg["metric"] = {"name": "pixels_cosine", "params": {}}
    config = CellConfig.build(cfg)
    output = paired_runner.run(config, spec, {}, resolve_dataset(str(crops["a"]), config.dataset),
                               resolve_dataset(str(crops["b"]), config.dataset))
    ref = embed(crops["a"], "pixels", cache_dir=tmp_path / "cache", progress=False)
    cand = embed(crops["b"], "pixels", cache_dir=tmp_path / "cache", progress=False)
    table = output.tables["pairs"]
    by_id = {**dict(zip(ref.hashes, ref.features)), **dict(zip(cand.hashes, cand.features))}
    expected = cosine_distance(np.stack([by_id[h] for h in table["reference_id"]]),
                               np.stack([by_id[h] for h in table["candidate_id"]]))
    np.testing.assert_allclose(table["pixels_cosine"], expected, rtol=1e-12)
    assert output.extractor.name == "pixels" and output.values["n_pairs"] == 24
    assert output.candidate.n_embedded == 24 and ref.n_computed == 0    # embedded once, by the cell


def test_unreadable_images_are_skipped_or_named(tmp_path, crops, store):
    _few(crops, tmp_path / "ref")
    _few(crops, tmp_path / "cand")
    (tmp_path / "cand" / "000.png").write_bytes(b"not a png")
    overrides = ["metric=psnr", "pairing=by_name", f"pair.reference={tmp_path / 'ref'}",
                 f"pair.candidate={tmp_path / 'cand'}"]
    with pytest.raises(DsimError, match="cannot read image .*000.png"):
        run_cell(cell_config(store, overrides), tmp_path / "raise")
    record = run_cell(cell_config(store, [*overrides, "dataset.on_error=skip"]), tmp_path / "skip")
    assert record["values"]["n_pairs"] == 7 and list(record["skipped"]["candidate"]) == ["000.png"]


def _fake_output(tmp_path, crops, tables):
    sides = {side: SideSummary(side, crops[key], "f" * 64, 24) for side, key in (("reference", "a"), ("candidate", "b"))}
    return CellOutput(values={"m": 1.0}, reference=sides["reference"], candidate=sides["candidate"], tables=tables)


def test_per_image_scores_of_distribution_metrics_get_entropy_bias(tmp_path, crops):
    from dsim.data.images import list_images

    files = {side: list_images(crops[key]) for side, key in (("reference", "a"), ("candidate", "b"))}

    def table(side, **columns):
        return pd.DataFrame({"image_id": [f.sha256 for f in files[side]], "relpath": [f.relpath for f in files[side]],
                             **columns})

    score = np.linspace(0, 1, 24)
    cfg = CellConfig.build(cell_config(tmp_path, ["metric=odist"]))
    one = _fake_output(tmp_path, crops, {"per_image_candidate": table("candidate", i_dist=score)})
    within_run.entropy_bias(cfg, one, tmp_path / "one").apply_to(one)
    assert {f"i_dist.{k}" for k in ENTROPY_VALUES} <= set(one.values) and one.values["i_dist.entropy_n"] == 24
    assert "entropy" in one.tables["per_image_candidate"] and (tmp_path / "one" / "entropy_scatter.png").exists()

    several = _fake_output(tmp_path, crops, {
        "per_image_candidate": table("candidate", covered=score, realistic=score[::-1], index=np.arange(24)),
        "per_image_reference": table("reference", covered=score)})
    within_run.entropy_bias(cfg, several, tmp_path / "several").apply_to(several)
    keys = {k for k in several.values if "entropy" in k}
    assert keys == {f"{p}.{k}" for p in ("candidate.covered", "reference.covered", "realistic") for k in ENTROPY_VALUES}
    assert several.values["realistic.entropy_pearson_r"] == pytest.approx(
        -several.values["candidate.covered.entropy_pearson_r"])


def test_entropy_bias_keys_are_read_in_the_old_and_the_new_form():
    from dsim.analysis.correlation import entropy_bias_of

    new = {"psnr": 30.0, "psnr.entropy_pearson_r": -0.7, "psnr.entropy_n": 68}
    old = {"psnr": 30.0, "entropy_pearson_r": -0.7, "entropy_n": 68}  # dsim 0.1: a cell's only series unprefixed
    assert entropy_bias_of(new, "psnr")["pearson_r"] == entropy_bias_of(old, "psnr")["pearson_r"] == -0.7
    assert entropy_bias_of({"covered": 1.0, "reference.covered.entropy_pearson_r": 0.2}, "covered")["pearson_r"] == 0.2
    assert entropy_bias_of({"psnr": 30.0}, "psnr") is None


def test_unknown_pairing_choice_is_one_line(capsys):
    from dsim.cli.app import check_group_overrides

    with pytest.raises(SystemExit):
        check_group_overrides(["metric=psnr", "pairing=closest"])
    assert "unknown pairing 'closest' (choose from: by_name, nearest, random)" in capsys.readouterr().err
