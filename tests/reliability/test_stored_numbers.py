"""Trust in stored numbers: nothing dsim reads back (vectors, memoised statistics, statistics files, the hash
memo, imported embedding files, old cache entries) is used when it is not what dsim wrote, and nothing a
running process needs is taken away from under it.

Each case reproduces a fault of issue 24 at the size where it broke (200+ images, decode workers on, two
processes, a read-only bind mount or a full tmpfs where the machine allows them):

- a stored vector overwritten (zeros, 1e30) and an edited FID memo: dropped or refused with one warning
  line and recomputed, the number equal to the clean one (before: FID 3.28e+61, 32064 instead of 142.9);
- an edited statistics file: one line, never another FID under the original dataset's name or a "reuse";
- an in-place edit with a restored mtime (``touch -r``): seen (ctime), and ``dsim cache verify`` /
  ``dsim lineage --verify`` re-read every byte;
- ``caf<0xe9>.jpg`` beside a file literally named ``caf\\xe9.jpg``: two ids;
- ``dsim cache import`` of a file whose width contradicts its identity: nothing imported;
- a read-only cache, planted legacy ``.npy`` entries, features at 1e100: one line, or recomputed;
- ``dsim cache gc`` while another process reads an identity: left alone;
- a 20000×1 PNG: bounded memory;
- a corrupt ``.pt``, an LPIPS trunk file, ``dataset.on_error=skip``, a compaction on a full disk.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import dsim
from dsim.errors import DsimError
from dsim.extractors import build
from dsim.data.images import image_path, list_images
from dsim.embeddings.store import KEY_BYTES, VectorStore, identities, open_identity
from dsim_testing import dsim_env, one_line_error, run_dsim, stored_vectors, tracking_uri, write_crops

N = 200  # images per set: several batches of 32, so decode workers start


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, Path]:
    """Two 200-image crop sets (48 px), older than the hash memo's racy window; shared read-only."""
    root = tmp_path_factory.mktemp("stored_numbers")
    write_crops(root / "ref", N, seed=21, size=48)
    write_crops(root / "cand", N, seed=22, size=48)
    time.sleep(2.1)  # dsim.data.hash_memo.RACY_SECONDS: files this fresh are not memoised
    return {"ref": root / "ref", "cand": root / "cand"}


def cell(tmp: Path, sets: dict, *extra: str, job: str = "job", reference=None, candidate=None,
         cache: Path | None = None) -> list[str]:
    """A pixels FID cell (ref vs cand unless told), its cache, store and job folder under ``tmp``."""
    return ["extractor=pixels", "metric=fid", "progress=false", "device=cpu", "num_workers=2",
            f"pair.reference={reference or sets['ref']}", f"pair.candidate={candidate or sets['cand']}",
            f"cache_dir={cache or tmp / 'cache'}", f"tracking.uri={tracking_uri(tmp)}", f"hydra.run.dir={tmp / job}",
            *extra]


def result(tmp: Path, job: str = "job") -> dict:
    return json.loads((tmp / job / "result.json").read_text())


def warnings_of(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("dsim: warning:")]


def row_of(cache: Path, content_hash: str) -> tuple[Path, int]:
    """The ``.vec`` file and row where the store keeps the vector of ``content_hash``."""
    wanted = bytes.fromhex(content_hash)
    for keys in sorted(cache.rglob("*.keys")):
        raw = keys.read_bytes()
        for row in range(len(raw) // KEY_BYTES):
            if raw[row * KEY_BYTES:(row + 1) * KEY_BYTES] == wanted:
                return keys.with_suffix(".vec"), row
    raise AssertionError(f"{content_hash} not stored under {cache}")


def overwrite_row(vec: Path, row: int, dim: int, value: float) -> None:
    with open(vec, "r+b") as handle:
        handle.seek(row * dim * 4)
        handle.write(np.full(dim, value, "<f4").tobytes())


# ---------------------------------------------------------------------------------------------------
# item 6: wrong-but-valid stored numbers


@pytest.mark.slow
def test_overwritten_stored_vectors_are_dropped_and_recomputed(tmp_path, sets):
    """Two stored vectors overwritten (zeros, 1e30): the rerun warns once, forwards exactly those two
    images again and gives the clean FID to the last digit (before: FID 3.28e+61, exit 0)."""
    clean = run_dsim(*cell(tmp_path, sets), cwd=tmp_path)
    first = result(tmp_path)
    assert first["embedded"] == {"reference": N, "candidate": N}
    for memo in (tmp_path / "cache").rglob("fid-stats-*.npz"):
        memo.unlink()  # the memoised statistics (right: made from verified rows) would spare reading the rows
    refs = list_images(sets["cand"])
    for ref, value in ((refs[3], 0.0), (refs[150], 1e30)):
        vec, row = row_of(tmp_path / "cache", ref.sha256)
        overwrite_row(vec, row, 768, value)
    done = run_dsim(*cell(tmp_path, sets, "force=true", job="again"), cwd=tmp_path)
    again = result(tmp_path, "again")
    assert again["values"]["fid"] == first["values"]["fid"], (again["values"], first["values"])
    assert again["embedded"] == {"reference": 0, "candidate": 2}
    checksum_lines = [w for w in warnings_of(done) if "failed their checksum" in w]
    assert len(checksum_lines) == 1 and "2 stored vector(s)" in checksum_lines[0], done.stderr
    assert "Traceback" not in clean.stderr + done.stderr


def test_store_verify_drops_rows_that_fail_and_gather_never_returns_them(tmp_path):
    """A store of 300 rows with three damaged ones (a zeroed row, a flipped bit, two rows swapped):
    ``verify`` finds exactly those, drops them, and no later read returns them."""
    rng = np.random.default_rng(0)
    hashes = [f"{i:064x}" for i in range(1, 301)]
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    with VectorStore(tmp_path, "t", "ab" * 32, 16) as store:
        store.append(hashes[:150], vectors[:150])
    with VectorStore(tmp_path, "t", "ab" * 32, 16) as store:
        store.append(hashes[150:], vectors[150:])
    store = VectorStore(tmp_path, "t", "ab" * 32, 16)
    np.testing.assert_array_equal(store.gather(hashes), vectors)
    (shard,) = store.shards()  # merged on close
    damaged = vectors.copy()
    damaged[10] = 0
    damaged[20].view(np.uint32)[3] ^= 1  # one flipped bit
    damaged[[30, 31]] = damaged[[31, 30]]
    rows = np.fromfile(shard.keys, np.uint8).reshape(-1, KEY_BYTES)
    order = [bytes(r).hex() for r in rows]
    on_disk = np.memmap(shard.vec, dtype="<f4", mode="r+", shape=(300, 16))
    for i in (10, 20, 30, 31):
        on_disk[order.index(hashes[i])] = damaged[i]
    on_disk.flush()
    del on_disk

    found = VectorStore(tmp_path, "t", "ab" * 32, 16).verify()
    assert found == {"checked": 300, "dropped": 4, "unverified": 0}
    fresh = VectorStore(tmp_path, "t", "ab" * 32, 16)
    assert not fresh.contains([hashes[i] for i in (10, 20, 30, 31)]).any()
    assert len(fresh) == 296
    with pytest.raises(DsimError, match="4 of 4 vectors are missing"):
        fresh.gather([hashes[i] for i in (10, 20, 30, 31)])
    keep = [h for i, h in enumerate(hashes) if i not in (10, 20, 30, 31)]
    np.testing.assert_array_equal(fresh.gather(keep), np.delete(vectors, [10, 20, 30, 31], axis=0))


def test_a_damaged_row_raises_corrupt_entries_naming_it(tmp_path):
    from dsim.embeddings.store import CorruptEntries

    hashes = [f"{i:064x}" for i in range(1, 41)]
    with VectorStore(tmp_path, "t", "cd" * 32, 8) as store:
        store.append(hashes, np.ones((40, 8), np.float32))
    (vec,) = tmp_path.rglob("*.vec")
    overwrite_row(vec, 7, 8, 1e30)
    with pytest.raises(CorruptEntries) as caught:
        VectorStore(tmp_path, "t", "cd" * 32, 8).gather(hashes)
    assert caught.value.hashes == [hashes[7]] and "failed their checksum" in str(caught.value)
    assert VectorStore(tmp_path, "t", "cd" * 32, 8).get(hashes[7]) is None  # dropped for every process


@pytest.mark.slow
def test_an_edited_fid_memo_is_recomputed_not_used(tmp_path, sets):
    """The memoised FID statistics of the candidate edited (mean scaled): the rerun warns and gives the
    clean FID (before: 32064 instead of 142.9)."""
    run_dsim(*cell(tmp_path, sets), cwd=tmp_path)
    clean = result(tmp_path)["values"]["fid"]
    memos = sorted((tmp_path / "cache").rglob("fid-stats-*.npz"))
    assert len(memos) == 2
    for memo in memos:
        with np.load(memo) as data:
            arrays = {k: data[k] for k in data.files}
        arrays["mean"] = arrays["mean"] * 3.0
        np.savez(memo, **arrays)
    done = run_dsim(*cell(tmp_path, sets, "force=true", job="again"), cwd=tmp_path)
    assert result(tmp_path, "again")["values"]["fid"] == clean
    assert sum("failed their checksum" in w for w in warnings_of(done)) == 2, done.stderr


# ---------------------------------------------------------------------------------------------------
# item 3: statistics files


@pytest.fixture(scope="module")
def ref_stats(sets, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("stats_file")
    run_dsim("stats", str(sets["ref"]), "--extractor", "pixels", "--device", "cpu", "--cache-dir",
             str(root / "cache"), "--out", str(root / "ref.npz"), cwd=root)
    return {"file": root / "ref.npz", "cache": root / "cache"}


def edited_copy(source: Path, target: Path, **changes) -> Path:
    """``source`` rewritten with some arrays (or meta keys, as ``meta_<key>``) changed, the rest kept."""
    with np.load(source) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    for key, value in changes.items():
        if key.startswith("meta_"):
            meta[key[5:]] = value
        else:
            arrays[key] = value(arrays[key]) if callable(value) else value
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(target, **arrays)
    return target


@pytest.mark.parametrize("change", [
    {"mean": lambda m: m + 0.01}, {"n": np.int64(5)}, {"scatter": lambda s: s * 2},
    {"meta_fingerprint": "0" * 64}, {"meta_extractor_identity": "1" * 64}], ids=["mean", "n", "scatter",
                                                                                 "fingerprint", "identity"])
@pytest.mark.slow
def test_an_edited_statistics_file_is_a_one_line_error(tmp_path, ref_stats, change):
    from dsim.embeddings.stats_files import load_stats

    load_stats(ref_stats["file"])  # the original reads
    edited = edited_copy(ref_stats["file"], tmp_path / "edited.npz", **change)
    with pytest.raises(DsimError, match="changed after dsim wrote them") as caught:
        load_stats(edited)
    assert "\n" not in str(caught.value) and "dsim stats" in str(caught.value)


@pytest.mark.slow
def test_an_in_place_edit_of_a_statistics_file_is_refused_not_reused(tmp_path, ref_stats, sets):
    """A cell against the statistics file, then the file's mean edited in place: the second cell is a one-line
    error, not "reused" with the old value and not another FID under the original fingerprint."""
    stats = tmp_path / "ref.npz"
    shutil.copy2(ref_stats["file"], stats)
    shutil.copytree(ref_stats["cache"], tmp_path / "cache")
    run_dsim(*cell(tmp_path, sets, reference=stats), cwd=tmp_path)
    edited_copy(stats, stats, mean=lambda m: m + 0.05)
    done = run_dsim(*cell(tmp_path, sets, reference=stats, job="again"),
                    cwd=tmp_path, check=False)
    assert "changed after dsim wrote them" in one_line_error(done)
    assert not (tmp_path / "again" / "result.json").exists()


def test_the_cell_key_follows_the_statistics_files_content(ref_stats, tmp_path):
    """Two legitimately different statistics files with the same provenance keys give different cell keys."""
    from dsim.embeddings.stats_files import FeatureStats, load_stats, save_stats

    original = load_stats(ref_stats["file"])
    extractor = build("pixels")
    other = FeatureStats(original.stats.n, original.stats.mean + 1.0, original.stats.scatter)
    save_stats(tmp_path / "other.npz", other, extractor=extractor, fingerprint=original.fingerprint,
               root=original.meta["root"])
    assert load_stats(tmp_path / "other.npz").sha256 != original.sha256


# ---------------------------------------------------------------------------------------------------
# item 4: in-place edits the hash memo could miss


def edit_in_place_keeping_stat(path: Path) -> None:
    """Rewrite ``path`` with other bytes of the same size, and put its mtime back (``touch -r``)."""
    info = path.stat()
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert path.stat().st_size == info.st_size and path.stat().st_mtime_ns == info.st_mtime_ns


def test_an_in_place_edit_with_a_restored_mtime_changes_the_hash(tmp_path, sets):
    folder = tmp_path / "copy"
    shutil.copytree(sets["cand"], folder)
    time.sleep(2.1)  # past the racy window: the listing below memoises every file
    before = {ref.relpath: ref.sha256 for ref in list_images(folder)}
    edit_in_place_keeping_stat(folder / "007.png")
    after = {ref.relpath: ref.sha256 for ref in list_images(folder)}
    assert after["007.png"] != before["007.png"]
    assert {k for k in before if before[k] != after[k]} == {"007.png"}


def plant_stale_memo(folder: Path, relpath: str) -> str:
    """Make the hash memo hold a wrong SHA-256 for one file (as a file system whose times lie would):
    its row matches the file's stat exactly. Returns the wrong hash."""
    from dsim.data.hash_memo import HashState

    path = folder / relpath
    wrong = "e" * 64
    state = HashState.open()
    state.remember([(os.fsencode(path), path.stat(), wrong, time.time())])
    state.close()
    assert {r.relpath: r.sha256 for r in list_images(folder)}[relpath] == wrong
    return wrong


@pytest.mark.slow
def test_cache_verify_rehashes_every_byte_and_corrects_the_memo(tmp_path, sets):
    folder = tmp_path / "copy"
    shutil.copytree(sets["cand"], folder)
    time.sleep(2.1)
    truth = {r.relpath: r.sha256 for r in list_images(folder)}
    plant_stale_memo(folder, "042.png")
    done = run_dsim("cache", "verify", str(folder), "--cache-dir", str(tmp_path / "cache"), cwd=tmp_path,
                    check=False)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "1 file(s) had changed" in done.stdout and "042.png" in done.stdout
    assert {r.relpath: r.sha256 for r in list_images(folder)} == truth
    again = run_dsim("cache", "verify", str(folder), "--cache-dir", str(tmp_path / "cache"), cwd=tmp_path)
    assert "the hash memo was right about every file" in again.stdout


@pytest.mark.slow
def test_lineage_verify_reads_every_byte(tmp_path, sets):
    """A run, then one of its images changed while the memo says otherwise: ``dsim lineage`` (trusting the
    memo) says the data matches, ``dsim lineage --verify`` says it changed and names the file."""
    folder = tmp_path / "copy"
    shutil.copytree(sets["cand"], folder)
    time.sleep(2.1)
    run_dsim(*cell(tmp_path, sets, candidate=folder), cwd=tmp_path)
    run_id = result(tmp_path)["mlflow_run_id"]
    recorded = {r.relpath: r.sha256 for r in list_images(folder)}["011.png"]
    (folder / "011.png").write_bytes(b"not the image the run saw")
    from dsim.data.hash_memo import HashState

    state = HashState.open()  # the memo still claims the recorded hash for the file as it is now
    state.remember([(os.fsencode(folder / "011.png"), (folder / "011.png").stat(), recorded, time.time() + 10)])
    state.close()
    uri = ["--tracking-uri", tracking_uri(tmp_path)]
    trusting = run_dsim("lineage", run_id, *uri, cwd=tmp_path, check=False)
    assert trusting.returncode == 0 and "workspace data matches" in trusting.stdout
    verified = run_dsim("lineage", run_id, "--verify", *uri, cwd=tmp_path, check=False)
    assert verified.returncode == 1 and "CHANGED" in verified.stdout and "011.png" in verified.stdout


# ---------------------------------------------------------------------------------------------------
# item 7: ids are injective


def test_an_escaped_name_and_its_literal_spelling_are_two_images(tmp_path, sets):
    sources = sorted(sets["ref"].glob("*.png"))
    with open(os.fsencode(tmp_path) + b"/caf\xe9.png", "wb") as handle:
        handle.write(sources[0].read_bytes())
    shutil.copy2(sources[1], tmp_path / "caf\\xe9.png")  # a name literally spelled with a backslash
    shutil.copy2(sources[2], tmp_path / "plain.png")
    refs = list_images(tmp_path)
    assert len({r.relpath for r in refs}) == 3
    for ref in refs:
        assert image_path(tmp_path, ref.relpath).read_bytes() == Path(ref.path).read_bytes()
    by_id = {r.relpath: r.sha256 for r in refs}
    assert by_id["caf\\xe9.png"] != by_id["caf\\\\xe9.png"]
    assert by_id["plain.png"] != by_id["caf\\xe9.png"]


# ---------------------------------------------------------------------------------------------------
# item 8: an embedding file whose width contradicts its identity


@pytest.mark.slow
def test_an_import_whose_width_contradicts_its_identity_writes_nothing(tmp_path, sets):
    """A file claiming pixels' real identity with 5-d features, into an empty cache: one line, nothing
    written, and a pixels cell afterwards works (before: the store became 5-d and every cell failed)."""
    identity = build("pixels").identity
    hashes = [r.sha256 for r in list_images(sets["ref"])][:4]
    poisoned = tmp_path / "poisoned.npz"
    np.savez(poisoned, features=np.ones((4, 5), np.float32), ids=np.array(["a", "b", "c", "d"]),
             hashes=np.array(hashes), fingerprint="cd" * 32, extractor="pixels", extractor_identity=identity,
             weights_checksum="none", random_weights=False)
    cache = tmp_path / "cache"
    done = run_dsim("cache", "import", str(poisoned), "--cache-dir", str(cache), cwd=tmp_path, check=False)
    assert "pixels" in one_line_error(done)
    assert not cache.exists() or not [p for p in cache.rglob("*") if p.is_file()]
    good = tmp_path / "good.npz"
    run_dsim("embed", str(sets["ref"]), "--extractor", "pixels", "--device", "cpu", "--out", str(good),
             "--cache-dir", str(tmp_path / "other_cache"), cwd=tmp_path)
    # one bad file among good ones: nothing imported at all
    done = run_dsim("cache", "import", str(good), str(poisoned), "--cache-dir", str(cache), cwd=tmp_path,
                    check=False)
    one_line_error(done)
    assert stored_vectors(cache) == 0
    run_dsim("cache", "import", str(good), "--cache-dir", str(cache), cwd=tmp_path)
    assert stored_vectors(cache) == N
    run_dsim(*cell(tmp_path, sets), cwd=tmp_path)
    assert result(tmp_path)["embedded"] == {"reference": 0, "candidate": N}


def test_an_edited_description_or_identity_is_refused(tmp_path, sets):
    from dsim.embeddings.npz import check_npz, save_npz

    embeddings = dsim.embed(sets["ref"], extractor="pixels", cache_dir=tmp_path / "cache", progress=False,
                            device="cpu")
    save_npz(embeddings, tmp_path / "good.npz")
    assert check_npz(tmp_path / "good.npz", tmp_path / "empty").describe["dim"] == 768
    with np.load(tmp_path / "good.npz") as data:
        arrays = {k: data[k] for k in data.files}
    describe = json.loads(str(arrays["describe"]))
    describe["dim"] = 5
    np.savez(tmp_path / "desc.npz", **{**arrays, "describe": np.array(json.dumps(describe))})
    with pytest.raises(DsimError, match="not the hash of its extractor description"):
        check_npz(tmp_path / "desc.npz", tmp_path / "empty")
    np.savez(tmp_path / "narrow.npz", **{**arrays, "features": arrays["features"][:, :5]})
    with pytest.raises(DsimError, match="5-d features of 'pixels', but its identity describes 768-d"):
        check_npz(tmp_path / "narrow.npz", tmp_path / "empty")


# ---------------------------------------------------------------------------------------------------
# item 10: tracebacks that became one line, or recomputations


@pytest.fixture()
def read_only(tmp_path):
    """A read-only bind mount of ``tmp_path/rw`` at ``tmp_path/ro`` (skipped where mounting is not permitted)."""
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    for args in (["--bind", str(rw), str(ro)], ["-o", "remount,bind,ro", str(ro)]):
        done = subprocess.run(["mount", *args], capture_output=True, text=True)
        if done.returncode != 0:
            subprocess.run(["umount", str(ro)], capture_output=True)
            pytest.skip(f"cannot make a read-only bind mount here: {done.stderr.strip()}")
    try:
        yield {"rw": rw, "ro": ro}
    finally:
        if subprocess.run(["umount", str(ro)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(ro)], capture_output=True)


@pytest.mark.slow
def test_a_read_only_cache_serves_what_it_has_and_refuses_new_work_in_one_line(tmp_path, sets, read_only):
    """A cell whose vectors are all in a read-only cache runs; one that must embed new images is one line
    naming the cache (before: ``OSError [Errno 30]`` on ``.locks/*.lock``)."""
    run_dsim(*cell(tmp_path, sets, cache=read_only["rw"]), cwd=tmp_path)
    clean = result(tmp_path)["values"]["fid"]
    done = run_dsim(*cell(tmp_path, sets, "force=true", cache=read_only["ro"], job="cached"), cwd=tmp_path)
    assert result(tmp_path, "cached")["values"]["fid"] == clean
    assert "Traceback" not in done.stderr
    other = tmp_path / "other"
    write_crops(other, 40, seed=23, size=48)
    done = run_dsim(*cell(tmp_path, sets, cache=read_only["ro"], candidate=other, job="new"),
                    cwd=tmp_path, check=False)
    line = one_line_error(done)
    assert "not writable" in line and str(read_only["ro"]) in line


def legacy_cache(cache: Path, extractor, hashes_and_vectors) -> Path:
    """An old (dsim 0.1) per-file cache: ``<name>-<identity16>/extractor.json`` and ``<xx>/<hash>.npy``."""
    folder = cache / f"{extractor.name}-{extractor.identity[:16]}"
    folder.mkdir(parents=True)
    (folder / "extractor.json").write_text(json.dumps({"name": extractor.name, "identity": extractor.identity,
                                                       "dim": extractor.dim}))
    for content_hash, vector in hashes_and_vectors:
        (folder / content_hash[:2]).mkdir(exist_ok=True)
        path = folder / content_hash[:2] / f"{content_hash}.npy"
        if isinstance(vector, np.ndarray):
            np.save(path, vector)
        else:
            np.save(path, np.array([vector], dtype=object), allow_pickle=True)
    return folder


def test_planted_pickled_or_misshaped_legacy_entries_are_recomputed(tmp_path, sets):
    """Old per-file entries: one a pickled object array, one of another shape, the rest right: an embed
    recomputes the two (one warning) and gives the clean features; a planted pickle never runs."""
    extractor = build("pixels")
    clean = dsim.embed(sets["ref"], extractor=extractor, cache_dir=tmp_path / "clean", progress=False, device="cpu")
    features = clean.features
    marker = tmp_path / "pwned"

    class Planted:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    entries = [(h, features[i]) for i, h in enumerate(clean.hashes)]
    entries[5] = (clean.hashes[5], Planted())
    entries[9] = (clean.hashes[9], features[9][:100])
    legacy_cache(tmp_path / "old", extractor, entries)
    with pytest.warns(UserWarning, match="2 stored vector"):
        again = dsim.embed(sets["ref"], extractor=extractor, cache_dir=tmp_path / "old", progress=False,
                           device="cpu").features
    np.testing.assert_array_equal(again, features)
    assert not marker.exists()
    run_dsim("cache", "migrate", "--cache-dir", str(tmp_path / "old"), cwd=tmp_path)
    assert stored_vectors(tmp_path / "old") == N


@pytest.mark.parametrize("metric", ["fid", "kid_poly", "kid_rbf", "cmmd", "prdc"])
def test_features_too_large_for_float64_products_are_one_line(metric):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 8)) * 1e100, rng.normal(size=(50, 8)) * 1e100
    with pytest.raises(DsimError, match="rescale the features") as caught:
        dsim.metrics.compute(metric, a, b)
    assert "\n" not in str(caught.value)


def test_kernel_sums_that_overflow_float32_are_one_line():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(60, 8)) * 1e7, rng.normal(size=(60, 8)) * 1e7
    with pytest.raises(DsimError, match="kernel_dtype=float64"):
        dsim.metrics.kid_poly(a, b, kernel_dtype="float32", subset_size=50)


# ---------------------------------------------------------------------------------------------------
# item 11: dsim cache gc while another process reads an identity

READER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import dsim
    emb = dsim.embed(sys.argv[1], extractor="pixels", cache_dir=sys.argv[2], progress=False, device="cpu")
    Path(sys.argv[3]).write_text("embedded")
    while not Path(sys.argv[4]).exists():
        time.sleep(0.05)
    print(emb.features.shape[0], float(emb.features.sum()))
""")


@pytest.mark.slow
def test_gc_leaves_alone_what_a_running_process_reads(tmp_path, sets):
    """A process has embedded a dataset gc is not told to keep and is about to read it; gc meanwhile leaves
    the identity alone, the reader gets all its vectors; once the reader is gone, gc drops them
    (before: "200 of 200 vectors are missing")."""
    cache = tmp_path / "cache"
    ready, go = tmp_path / "ready", tmp_path / "go"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(sets["cand"]), str(cache), str(ready), str(go)],
                              env=dsim_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert reader.poll() is None and time.monotonic() < deadline, reader.communicate()
            time.sleep(0.1)
        kept = tmp_path / "kept"
        write_crops(kept, 3, seed=24, size=48)
        gc = run_dsim("cache", "gc", "--keep", str(kept), "--cache-dir", str(cache), cwd=tmp_path)
        assert "in use by a running dsim process, left alone" in gc.stdout
        assert stored_vectors(cache) == N
        go.write_text("go")
        out, err = reader.communicate(timeout=120)
    finally:
        if reader.poll() is None:
            reader.kill()
    assert reader.returncode == 0, err
    assert out.split()[0] == str(N)
    gc = run_dsim("cache", "gc", "--keep", str(kept), "--cache-dir", str(cache), cwd=tmp_path)
    assert "drop the whole identity" in gc.stdout and stored_vectors(cache) == 0


def test_a_missing_vector_names_the_gc_that_removed_it(tmp_path):
    """A reader without a lease (an index loaded before a gc dropped its rows) is told who removed them."""
    from dsim.embeddings.store import note_gc

    hashes = [f"{i:064x}" for i in range(1, 11)]
    with VectorStore(tmp_path, "t", "ef" * 32, 4) as store:
        store.append(hashes, np.ones((10, 4), np.float32))
    reader = VectorStore(tmp_path, "t", "ef" * 32, 4)
    assert reader.contains(hashes).all()
    dropper = VectorStore(tmp_path, "t", "ef" * 32, 4)
    note_gc(dropper.directory, 10)
    dropper.compact(keep=hashes[:2])
    reader.refresh()
    with pytest.raises(DsimError, match=r"8 of 10 vectors are missing .*dsim cache gc` \(pid \d+"):
        reader.gather(hashes)


# ---------------------------------------------------------------------------------------------------
# item 13: an extreme aspect ratio

# the peak of this process's own memory (VmHWM): ru_maxrss would start at the forking pytest's resident size
PEAK = textwrap.dedent("""
    import re, sys
    from dsim.embeddings.embed import _DecodeDataset
    from dsim.extractors import build
    from dsim.data.images import list_images
    refs = [r for r in list_images(sys.argv[1]) if r.relpath == "strip.png"]
    index, tensor, error = _DecodeDataset(refs, build("efficientnet_lite0").preprocess)[0]
    assert error is None, error
    peak_kib = int(re.search(r"VmHWM:\\s*(\\d+)", open("/proc/self/status").read()).group(1))
    print(tuple(tensor.shape), peak_kib // 1024)
""")


@pytest.mark.slow
def test_a_20000_by_1_png_is_preprocessed_in_bounded_memory(tmp_path, sets):
    """A 20000×1 PNG of a few kB (before: 5.1 GB to resize its shorter side to 256): under 1 GB peak for the whole
    decoding process, and a cell over a set holding it runs."""
    folder = tmp_path / "with_strip"
    shutil.copytree(sets["cand"], folder)
    strip = np.tile(np.linspace(0, 255, 20000, dtype=np.uint8)[None, :, None], (1, 1, 3))
    Image.fromarray(strip).save(folder / "strip.png")
    assert (folder / "strip.png").stat().st_size < 60_000
    done = subprocess.run([sys.executable, "-c", PEAK, str(folder)], env=dsim_env(), capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    shape, peak_mb = done.stdout.rsplit(" ", 1)
    assert shape.strip() == "(3, 224, 224)" and int(peak_mb) < 1024, done.stdout
    run_dsim(*cell(tmp_path, sets, candidate=folder), cwd=tmp_path)
    assert result(tmp_path)["n_candidate"] == N + 1


# ---------------------------------------------------------------------------------------------------
# item 14 (the parts about files): corrupt checkpoints, skipped images, a compaction on a full disk


def test_random_bytes_in_a_checkpoint_are_called_corrupt(tmp_path):
    from dsim.weights import read_state_dict

    rng = np.random.default_rng(3)
    for i in range(20):  # random bytes fail in several ways inside torch.load: each is "corrupt"
        path = tmp_path / f"random{i}.pt"
        path.write_bytes(rng.bytes(4096))
        with pytest.raises(DsimError) as caught:
            read_state_dict(path, extractor="mobilenet_v2")
        assert "corrupt" in str(caught.value) and "Python objects" not in str(caught.value)
        assert "weights_only" not in str(caught.value)


def test_lpips_trunk_errors_never_advise_weights_only_false(tmp_path):
    from dsim.metrics.paired._lpips import load_trunk

    class Planted:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    import torch

    torch.save({"features.0.weight": Planted()}, tmp_path / "planted.pth")
    (tmp_path / "random.pth").write_bytes(np.random.default_rng(0).bytes(2048))
    for name, expected in (("planted.pth", "Python objects"), ("random.pth", "corrupt")):
        with pytest.raises(DsimError) as caught:
            load_trunk(torch.nn.Module(), tmp_path / name, name="lpips_alex")
        assert expected in str(caught.value) and "weights_only" not in str(caught.value)
        assert "\n" not in str(caught.value)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.slow
def test_skipped_images_are_named_in_one_line_and_listed_in_a_csv(tmp_path, sets):
    folder = tmp_path / "broken"
    shutil.copytree(sets["cand"], folder)
    names = [f"zz_broken_{i}.png" for i in range(7)]
    for name in names:
        (folder / name).write_bytes((sets["cand"] / "000.png").read_bytes()[:100])
    done = run_dsim(*cell(tmp_path, sets, "dataset.on_error=skip", candidate=folder), cwd=tmp_path)
    lines = [w for w in warnings_of(done) if "unreadable image" in w]
    assert len(lines) == 1, done.stderr
    assert "skipped 7 unreadable image(s)" in lines[0] and names[0] in lines[0] and "and 2 more" in lines[0]
    table = pd.read_csv(tmp_path / "job" / "artifacts" / "skipped_candidate.csv")
    assert sorted(table["relpath"]) == names and table["reason"].str.len().min() > 0


@pytest.mark.slow
def test_a_compaction_on_a_full_disk_keeps_the_shards_and_the_cell_green(tmp_path, sets):
    """The cache on a tmpfs with room for both sets' shards but not for merging them: the cell succeeds
    (one warning), no partial merged shard is left, and every vector reads back."""
    from test_files_and_inputs import fill

    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        fill(mount_point, leave=2 * N * (768 * 4 + 36) + 200_000)  # both sets' rows and their files, not a merge
        cache = mount_point / "cache"
        done = run_dsim(*cell(tmp_path, sets, cache=cache), cwd=tmp_path, check=False)
        assert done.returncode == 0, done.stderr
        assert any("not merged now" in w for w in warnings_of(done)), done.stderr
        store = open_identity(identities(cache)[0])
        assert not [s for s in store.shards() if s.keys.name.startswith("c")]
        hashes = [r.sha256 for r in list_images(sets["ref"])] + [r.sha256 for r in list_images(sets["cand"])]
        assert np.isfinite(store.gather(hashes)).all() and len(store) == 2 * N
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)
