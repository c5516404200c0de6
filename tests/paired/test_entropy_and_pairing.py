"""Per-image entropy and its cache; pairing by name, nearest neighbour and at random; the pair size rule."""

import shutil
import warnings

import numpy as np
import pytest
from PIL import Image

from dsim.embeddings import entropy as entropy_lib
from dsim.embeddings.entropy import EntropyCache, channel_entropies, dataset_entropies, image_entropy
from dsim.errors import DsimError
from dsim.data.images import list_images
from dsim_testing import stored_vectors
from dsim.cell.pairing import (PairingWarning, align_pair, match_by_name, nearest_indices, pair_datasets, random_indices,
                          resolve_extractor)


def save(folder, name, array):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def test_entropy_is_the_channel_mean_of_256_bin_histogram_entropies_in_bits():
    image = np.zeros((4, 64, 3), dtype=np.uint8)
    image[..., 0] = np.arange(256).reshape(4, 64)       # R: every level once → 8 bits
    image[:2, :, 1] = 255                               # G: two equal halves → 1 bit
    np.testing.assert_allclose(channel_entropies(image), [8.0, 1.0, 0.0])
    assert image_entropy(image) == pytest.approx(3.0)
    from skimage.measure import shannon_entropy

    photo = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert image_entropy(photo) == pytest.approx(np.mean([shannon_entropy(photo[..., c]) for c in range(3)]))


def test_entropy_cache_is_keyed_by_content_and_skips_decoding(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    save(tmp_path / "d", "a.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    save(tmp_path / "d", "sub/b.png", np.full((16, 16, 3), 7, dtype=np.uint8))
    first = dataset_entropies(tmp_path / "d", cache_dir=tmp_path / "cache")
    assert first["sub/b.png"] == 0.0 and 7.0 < first["a.png"] <= 8.0
    assert stored_vectors(tmp_path / "cache", "entropy") == 2

    shutil.copytree(tmp_path / "d", tmp_path / "moved")                # same contents elsewhere: no decoding
    monkeypatch.setattr(entropy_lib, "load_rgb", lambda path: pytest.fail(f"decoded {path}"))
    assert dataset_entropies(tmp_path / "moved", cache_dir=tmp_path / "cache") == first
    assert EntropyCache(tmp_path / "cache").get("0" * 64) is None


def test_by_name_matches_path_then_extension_then_unique_stem(tmp_path):
    pixel = np.zeros((4, 4, 3), dtype=np.uint8)
    for name in ("x/1.png", "x/2.png", "3.png", "dup/4.png", "dup2/4.png", "only_ref.png"):
        save(tmp_path / "ref", name, pixel)
    for name in ("x/1.png", "x/2.jpg", "elsewhere/3.jpg", "4.png", "only_cand.png"):
        save(tmp_path / "cand", name, pixel)
    ref, cand = list_images(tmp_path / "ref"), list_images(tmp_path / "cand")
    pairs = {cand[j].relpath: ref[i].relpath for i, j in zip(*match_by_name(ref, cand))}
    assert pairs == {"x/1.png": "x/1.png", "x/2.jpg": "x/2.png", "elsewhere/3.jpg": "3.png"}   # 4: ambiguous stem

    with pytest.warns(PairingWarning, match="2 of 5 candidate images have no namesake"):
        pairing = pair_datasets(tmp_path / "ref", tmp_path / "cand", method="by_name")
    assert len(pairing) == 3 and sorted(pairing.unmatched) == ["4.png", "only_cand.png"]
    assert pairing.n_reference == 6 and pairing.n_candidate == 5 and len(pairing.manifests["candidate"]) == 5
    save(tmp_path / "other", "zzz.png", pixel)
    with pytest.raises(DsimError, match="no image of .* has a namesake"):
        pair_datasets(tmp_path / "ref", tmp_path / "other", method="by_name")
    with pytest.raises(DsimError, match="unknown method"):
        pair_datasets(tmp_path / "ref", tmp_path / "other", method="closest")


def test_random_pairing_is_seeded_and_distinct_while_possible():
    a, b = random_indices(10, 6, seed=3), random_indices(10, 6, seed=3)
    assert a.tolist() == b.tolist() and len(set(a.tolist())) == 6
    assert random_indices(10, 6, seed=4).tolist() != a.tolist()
    assert len(random_indices(3, 7, seed=0)) == 7


def test_nearest_finds_the_closest_reference_in_chunks_with_ties_to_the_first(monkeypatch):
    import dsim.cell.pairing as pairing

    rng = np.random.default_rng(0)
    ref = rng.normal(size=(50, 8))
    order = rng.permutation(50)[:30]
    cand = ref[order] * 3.0 + rng.normal(scale=1e-3, size=(30, 8))
    monkeypatch.setattr(pairing, "_CHUNK", 7)
    idx, dist = nearest_indices(ref, cand, distance="cosine")
    assert idx.tolist() == order.tolist() and dist.max() < 1e-5
    idx, _ = nearest_indices(ref, ref[order], distance="euclidean")
    assert idx.tolist() == order.tolist()
    tied = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert nearest_indices(tied, np.array([[2.0, 0.0]]))[0].tolist() == [0]
    with pytest.raises(DsimError, match="unknown distance"):
        nearest_indices(ref, cand, distance="manhattan")


def test_nearest_pairs_datasets_through_a_cached_extractor(tmp_path, crops):
    picked = sorted(crops["a"].glob("*.png"))[:6]
    (tmp_path / "cand").mkdir()
    for i, path in enumerate(reversed(picked)):
        shutil.copy(path, tmp_path / "cand" / f"copy_{i}.png")
    pairing = pair_datasets(crops["a"], tmp_path / "cand", method="nearest", extractor="pixels",
                            cache_dir=tmp_path / "cache", device="cpu")
    assert [r.relpath for r in pairing.reference] == [p.name for p in reversed(picked)]
    assert pairing.extractor.name == "pixels" and float(pairing.distance.max()) < 1e-6
    assert pairing.n_embedded == {"reference": 24, "candidate": 0}     # the copies came from the cache


def test_auto_extractor_falls_back_to_efficientnet_with_a_warning(monkeypatch):
    import dsim.extractors as extractors

    real_build = extractors.build

    def build(name, **options):
        if name == "dreamsim":
            raise DsimError("DreamSim weights not found: /somewhere/dreamsim.pth")
        return real_build(name, **options)

    monkeypatch.setattr(extractors, "build", build)
    with pytest.warns(PairingWarning, match="uses efficientnet_lite0, not dreamsim .*dreamsim.pth"):
        assert resolve_extractor("auto").name == "efficientnet_lite0"
    with pytest.raises(DsimError, match="unknown extractor"):
        resolve_extractor("nope")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_extractor("pixels").name == "pixels"


def test_align_pair_resizes_the_candidate_to_the_reference_or_both_to_a_square():
    ref = np.zeros((30, 40, 3), dtype=np.uint8)
    cand = np.full((60, 90, 3), 200, dtype=np.uint8)
    a, b = align_pair(ref, cand)
    assert a is ref and b.shape == (30, 40, 3) and int(b.mean()) == 200
    a, b = align_pair(ref, cand, size=16)
    assert a.shape == b.shape == (16, 16, 3)
    same = align_pair(ref, ref.copy())
    assert same[1].shape == ref.shape
    with pytest.raises(DsimError, match="pairing.size"):
        align_pair(ref, cand, size=0)
