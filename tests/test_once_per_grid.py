"""A grid forwards each (image, extractor) once, also when its cells run in parallel (issue: scale).

Every cell's ``result.json`` says how many images it forwarded (``embedded``); over a sweep from a cold
cache they add up to unique images × extractors, because cells that need the same dataset through the same
extractor take turns on a lock and the second finds the vectors in the store.
"""

from __future__ import annotations

import json

import pytest

from dsim_testing import run_dsim, stored_vectors, write_crops

pytestmark = pytest.mark.slow

N = {"a": 60, "b": 50, "c": 40}


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("grid_sets")
    for seed, (name, n) in enumerate(N.items()):
        write_crops(root / name, n, seed=30 + seed, size=48)
    return root


def _sweep(work, sets, sweep_dir):
    return run_dsim("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "extractor=pixels",
                    "extractor.size=8,16", "metric=fid,kid_poly,cmmd", f"pair.reference={sets / 'a'}",
                    f"pair.candidate={sets / 'b'},{sets / 'c'}", "batch_size=16", "num_workers=2", "progress=false",
                    f"hydra.sweep.dir={sweep_dir}", "force=true", cwd=work)


def _embedded(sweep_dir):
    records = [json.loads(p.read_text()) for p in sweep_dir.rglob("result.json")]
    return records, sum(r["embedded"]["reference"] + r["embedded"]["candidate"] for r in records)


def test_parallel_grid_forwards_unique_images_times_extractors(tmp_path, sets):
    _sweep(tmp_path, sets, tmp_path / "cold")
    records, forwarded = _embedded(tmp_path / "cold")
    assert len(records) == 12
    assert forwarded == sum(N.values()) * 2  # 150 images × 2 extractor identities, however the cells raced
    assert stored_vectors(tmp_path / "cache", "pixels") == sum(N.values()) * 2
    _sweep(tmp_path, sets, tmp_path / "warm")  # force=true: recomputed, but nothing forwarded again
    records, forwarded = _embedded(tmp_path / "warm")
    assert len(records) == 12 and forwarded == 0
