"""Embedding files (`dsim embed --out`) import into another cache: no forward pass, the same features."""

import numpy as np
import pytest

import dsim
from dsim_testing import run_dsim


@pytest.mark.slow
def test_imported_embeddings_fill_an_empty_cache(crops, tmp_path):
    out = tmp_path / "embeddings" / "pixels" / "a.npz"
    shown = run_dsim("embed", str(crops["a"]), "--extractor", "pixels", "--out", str(out),
                     "--cache-dir", str(tmp_path / "cache_a"), cwd=tmp_path).stdout
    assert "24 embedded now" in shown

    imported = run_dsim("cache", "import", str(tmp_path / "embeddings"), "--cache-dir", str(tmp_path / "cache_b"),
                        cwd=tmp_path).stdout
    assert "24 vector(s) added" in imported
    again = run_dsim("cache", "import", str(out), "--cache-dir", str(tmp_path / "cache_b"), cwd=tmp_path).stdout
    assert "0 vector(s) added" in again and "24 already there" in again

    from_import = dsim.embed(crops["a"], extractor="pixels", cache_dir=tmp_path / "cache_b", progress=False)
    assert from_import.n_computed == 0
    with np.load(out) as saved:
        np.testing.assert_array_equal(from_import.features, saved["features"])
        assert list(saved["ids"]) == from_import.ids


@pytest.mark.slow
def test_bad_embedding_file_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    done = run_dsim("cache", "import", str(bad), "--cache-dir", str(tmp_path / "c"), cwd=tmp_path, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("dsim: error:") and "not an embedding file" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    missing = run_dsim("cache", "import", str(tmp_path / "nope"), cwd=tmp_path, check=False)
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr
