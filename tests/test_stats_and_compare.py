"""Reference statistics files (``dsim stats``) and the one-call API (``dsim.compare``)."""

import json
import shutil

import numpy as np
import pytest
from dsim_testing import cell_config, one_line_error, run_dsim, tracking_uri

import dsim
from dsim.pipeline import run_cell
from dsim.errors import DsimError
from dsim.metrics import compute
from dsim.embeddings.stats_files import load_stats


@pytest.fixture(scope="module")
def ref_stats(crops, tmp_path_factory):
    """``dsim stats`` of crop set a through pixels, as a user makes it."""
    tmp = tmp_path_factory.mktemp("stats")
    done = run_dsim("stats", str(crops["a"]), "--extractor", "pixels", "--out", str(tmp / "ref.npz"),
                    "--cache-dir", str(tmp / "cache"), cwd=tmp)
    assert "24 images x 768 dims through pixels" in done.stdout
    return tmp / "ref.npz"


def test_a_statistics_file_has_float64_statistics_and_provenance(ref_stats, crops):
    loaded = load_stats(ref_stats)
    features = dsim.embed(crops["a"], "pixels", cache_dir=ref_stats.parent / "cache", progress=False)
    assert loaded.stats.n == 24 and loaded.stats.mean.dtype == np.float64
    assert np.allclose(loaded.stats.covariance, np.cov(features.features.astype(np.float64), rowvar=False))
    with np.load(ref_stats, allow_pickle=False) as raw:
        assert raw["covariance"].dtype == np.float64 and raw["covariance"].shape == (768, 768)
    assert loaded.meta["fingerprint"] == features.fingerprint
    assert loaded.meta["extractor_identity"] == features.extractor_identity
    assert loaded.meta["dsim_version"] == dsim.__version__ and loaded.meta["n_images"] == 24


def test_fid_from_the_file_equals_fid_from_the_folder(tmp_path, ref_stats, crops):
    folder = run_cell(cell_config(tmp_path, ["extractor=pixels", "metric=fid", f"pair.reference={crops['a']}",
                                             f"pair.candidate={crops['b']}"]), tmp_path / "folder")
    from_file = run_cell(cell_config(tmp_path, ["extractor=pixels", "metric=fid", f"pair.reference={ref_stats}",
                                                f"pair.candidate={crops['b']}"]), tmp_path / "file")
    assert from_file["values"]["fid"] == pytest.approx(folder["values"]["fid"], rel=1e-9, abs=0)
    assert from_file["reference_fingerprint"] == folder["reference_fingerprint"]  # the same data, traced
    assert from_file["n_reference"] == 24 and from_file["cell_key"] != folder["cell_key"]


def test_a_file_of_another_extractor_or_for_another_metric_is_one_line(tmp_path, ref_stats, crops):
    base = [f"pair.reference={ref_stats}", f"pair.candidate={crops['b']}", "progress=false",
            f"cache_dir={tmp_path / 'cache'}", f"tracking.store_dir={tmp_path / 'mlruns'}"]
    line = one_line_error(run_dsim("extractor=mobilenet_v2", "metric=fid", *base, cwd=tmp_path, check=False))
    assert "holds statistics of extractor 'pixels'" in line and "dsim stats DIR --extractor mobilenet_v2" in line
    line = one_line_error(run_dsim("extractor=pixels", "metric=kid_poly", *base, cwd=tmp_path, check=False))
    assert "is a statistics file" in line and "metrics that take statistics: fid" in line
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DsimError, match="is not a dsim statistics file"):
        load_stats(broken)


def test_compare_takes_arrays_folders_statistics_and_generators(tmp_path, ref_stats, crops):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(80, 5)), rng.normal(0.3, 1.0, size=(90, 5))
    got = dsim.compare(x, y, metrics=("fid", "vendi"))
    assert got == {"fid": dict(compute("fid", x, y)), "vendi": dict(compute("vendi", x, y))}
    options = {"extractor": "pixels", "progress": False, "cache_dir": str(tmp_path / "cache")}
    folders = dsim.compare(crops["a"], crops["b"], metrics=("fid", "kid_poly"), params={"kid_poly": {"subset_size": 10}},
                           **options)
    cell = run_cell(cell_config(tmp_path, ["extractor=pixels", "metric=fid", f"pair.reference={crops['a']}",
                                           f"pair.candidate={crops['b']}"]), tmp_path / "cell")
    assert folders["fid"]["fid"] == cell["values"]["fid"] and set(folders["kid_poly"]) == {"kid_poly", "kid_poly_std"}
    assert dsim.compare(ref_stats, crops["b"], metrics="fid", **options)["fid"]["fid"] == pytest.approx(
        cell["values"]["fid"], rel=1e-9)
    toy = {"name": "toy", "_target_": "dsim.generators.toy.ToyGenerator", "n_samples": 30,
           "params": {"z_dim": 8, "w_dim": 8, "resolution": 16}}
    made = dsim.compare(crops["a"], toy, metrics=("fid", "pplzend"), **options,
                        params={"pplzend": {"lpips_weights": "random", "resize": None}})
    assert made["fid"]["fid"] > 0 and made["pplzend"]["n_kept"] == 30
    with pytest.raises(DsimError, match="both sides as feature arrays"):
        dsim.compare(x, crops["b"])
    with pytest.raises(DsimError, match="not in metrics"):
        dsim.compare(x, y, metrics=("fid",), params={"kid_poly": {}})
    with pytest.raises(DsimError, match="unknown option 'nonsense'"):
        dsim.compare(crops["a"], crops["b"], nonsense=1, **options)
    with pytest.raises(DsimError, match="is a statistics file .* metrics that take statistics: "):
        dsim.compare(ref_stats, crops["b"], metrics="kid_poly", **options)  # before: a TypeError deep in KID


def test_compare_can_record_the_run_like_the_cli(tmp_path, crops):
    got = dsim.compare(crops["a"], crops["b"], metrics=("fid",), extractor="pixels", record=True,
                       job_dir=tmp_path / "jobs", progress=False, cache_dir=str(tmp_path / "cache"),
                       **{"tracking.uri": tracking_uri(tmp_path)})
    record = json.loads((tmp_path / "jobs" / "fid" / "result.json").read_text())
    assert record["values"] == got["fid"] and record["tracking"] == "logged"
    from mlflow.tracking import MlflowClient

    run = MlflowClient(tracking_uri=tracking_uri(tmp_path)).get_run(record["mlflow_run_id"])
    assert run.data.metrics["fid"] == pytest.approx(got["fid"]["fid"])


def test_fid_statistics_are_memoised_beside_the_store_and_cleared_with_dropped_entries(crops, tmp_path, monkeypatch):
    from dsim.metrics._fid import FeatureStats
    from dsim.embeddings.stats_files import memoised_stats

    cache = tmp_path / "cache"
    emb = dsim.embed(crops["a"], "pixels", cache_dir=cache, batch_size=8, progress=False)
    streamed = FeatureStats.of_chunks(emb.iter_features())
    first = memoised_stats(emb)
    (memo,) = emb.store.memo_dir.glob("fid-stats-*.npz")
    assert np.array_equal(first.scatter, streamed.scatter) and np.array_equal(first.mean, streamed.mean)

    def no_streaming(chunks):
        raise AssertionError("the features were read again")

    with monkeypatch.context() as patch:
        patch.setattr(FeatureStats, "of_chunks", staticmethod(no_streaming))
        again = memoised_stats(dsim.embed(crops["a"], "pixels", cache_dir=cache, progress=False))
    assert again.n == 24 and np.array_equal(again.scatter, streamed.scatter)
    half = emb.subset(range(12))  # another set of images: its own statistics
    assert memoised_stats(half).n == 12 and len(list(emb.store.memo_dir.glob("fid-stats-*.npz"))) == 2
    memo.write_bytes(b"torn")  # an unreadable memo is recomputed, not trusted
    assert np.array_equal(memoised_stats(emb).scatter, streamed.scatter) and memo.stat().st_size > 4
    import errno

    import dsim.embeddings.stats_files as stats_file

    def read_only(path, data, durable=True):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    with monkeypatch.context() as patch:  # a read-only (or full) store still gives the statistics
        patch.setattr(stats_file, "atomic_write_bytes", read_only)
        assert memoised_stats(emb.subset(range(6))).n == 6
    from dsim.embeddings.store import release_leases

    release_leases()  # this process is done reading: gc may drop entries (it leaves leased identities alone)
    run_dsim("cache", "gc", "--keep", str(crops["a"]), "--cache-dir", str(cache), cwd=tmp_path)
    assert memo.exists()  # nothing dropped: the memo stays valid
    kept = tmp_path / "half"
    kept.mkdir()
    for name in emb.ids[:12]:
        shutil.copy(crops["a"] / name, kept / name)
    done = run_dsim("cache", "gc", "--keep", str(kept), "--cache-dir", str(cache), cwd=tmp_path).stdout
    assert "drop 12 of 24 entries" in done and not emb.store.memo_dir.exists()
