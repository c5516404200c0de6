import multiprocessing
import shutil

import numpy as np
import pytest
from PIL import Image

import dsim
from dsim.errors import ImageReadError
from dsim.extractors import Extractor, build
from dsim_testing import stored_vectors


class CountingForward:
    """Wraps an extractor's ``features`` to count the images that went through a forward pass."""

    def __init__(self, extractor: Extractor, monkeypatch):
        self.images = 0
        original = extractor.features

        def counted(model, batch):
            self.images += len(batch)
            return original(model, batch)

        monkeypatch.setattr(extractor, "features", counted)


def test_embed_returns_float32_features_and_ids(crops, tmp_path):
    emb = dsim.embed(crops["a"], extractor="pixels", cache_dir=tmp_path, progress=False)
    assert emb.features.dtype == np.float32 and emb.features.shape == (24, 768)
    assert emb.ids == sorted(emb.ids) and emb.ids[0] == "000.png"
    assert emb.n_computed == 24 and not emb.random_weights


def test_second_run_does_no_forward_pass_and_new_images_only_are_embedded(crops, tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(crops["a"], data)
    first = dsim.embed(data, extractor="efficientnet_lite0", cache_dir=tmp_path / "cache", progress=False)

    extractor = build("efficientnet_lite0")
    counter = CountingForward(extractor, monkeypatch)
    again = dsim.embed(data, extractor=extractor, cache_dir=tmp_path / "cache", progress=False)
    assert counter.images == 0 and again.n_computed == 0
    np.testing.assert_array_equal(first.features, again.features)

    shutil.copy(crops["b"] / "000.png", data / "new.png")
    grown = dsim.embed(data, extractor=extractor, cache_dir=tmp_path / "cache", progress=False)
    assert counter.images == 1 and grown.n_computed == 1 and len(grown) == 25


def test_identity_tracks_weights_and_preprocessing_only():
    assert build("pixels").identity == build("pixels").identity
    assert build("pixels", size=8).identity != build("pixels").identity
    real, random = build("efficientnet_lite0"), build("efficientnet_lite0", weights="random")
    assert real.identity != random.identity and random.is_random and not real.is_random
    assert real.resolved_weights.checksum.startswith("sha256:")


def test_random_weights_are_marked(crops, tmp_path):
    emb = dsim.embed(crops["a"], extractor="efficientnet_lite0", weights="random", cache_dir=tmp_path,
                     progress=False)
    assert emb.random_weights and emb.weights_checksum.startswith("random:")
    assert emb.features.shape == (24, 1280)


def test_unreadable_image_stops_or_is_skipped_and_counted(crops, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(crops["a"], data)
    (data / "zz_truncated.png").write_bytes((data / "000.png").read_bytes()[:200])
    with pytest.raises(ImageReadError, match="zz_truncated.png"):
        dsim.embed(data, extractor="pixels", cache_dir=tmp_path / "cache", progress=False)
    emb = dsim.embed(data, extractor="pixels", cache_dir=tmp_path / "cache", on_error="skip", progress=False)
    assert len(emb) == 24 and list(emb.skipped) == ["zz_truncated.png"]


def test_workers_and_batch_size_do_not_change_features(crops, tmp_path):
    one = dsim.embed(crops["a"], extractor="pixels", cache_dir=tmp_path / "1", batch_size=5, num_workers=2,
                     progress=False)
    two = dsim.embed(crops["a"], extractor="pixels", cache_dir=tmp_path / "2", batch_size=24, num_workers=0,
                     progress=False)
    np.testing.assert_array_equal(one.features, two.features)


def _embed_into(args):
    folder, cache = args
    embeddings = dsim.embed(folder, extractor="pixels", cache_dir=cache, progress=False)
    return embeddings.features, embeddings.n_computed


def test_concurrent_processes_embed_a_dataset_once_and_share_the_store(crops, tmp_path):
    cache = tmp_path / "cache"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        (a, n_a), (b, n_b) = pool.map(_embed_into, [(str(crops["a"]), str(cache))] * 2)
    np.testing.assert_array_equal(a, b)
    assert sorted([n_a, n_b]) == [0, 24]  # one process forwarded the set, the other found it in the store
    assert stored_vectors(cache, "pixels") == 24 and not list(cache.rglob("*.tmp"))
    again = dsim.embed(crops["a"], extractor="pixels", cache_dir=cache, progress=False)
    assert again.n_computed == 0
    np.testing.assert_array_equal(again.features, a)


def test_a_torn_store_tail_is_recomputed(crops, tmp_path):
    """A shard whose last row was cut (a writer killed mid-append): only that row is embedded again."""
    first = dsim.embed(crops["a"], extractor="pixels", cache_dir=tmp_path, progress=False)
    (vec,) = tmp_path.rglob("*.vec")
    with open(vec, "r+b") as handle:
        handle.truncate(vec.stat().st_size - 5)
    again = dsim.embed(crops["a"], extractor="pixels", cache_dir=tmp_path, progress=False)
    assert again.n_computed == 1
    np.testing.assert_array_equal(first.features, again.features)


def test_mixed_image_sizes_with_a_native_size_extractor_are_a_one_line_error(tmp_path):
    from dsim.errors import DsimError
    from dsim.extractors.base import Preprocess
    from dsim.extractors.pixels import Pixels

    class NativeSize(Pixels):
        name = "native_size_test"
        preprocess = Preprocess(size=None)

    for i, shape in enumerate([(20, 30, 3), (30, 20, 3)]):
        Image.fromarray(np.full(shape, 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    with pytest.raises(DsimError, match="extractor.size") as info:
        dsim.embed(tmp_path, extractor=NativeSize(), cache_dir=tmp_path / "cache", num_workers=0, progress=False)
    assert "\n" not in str(info.value)
