"""The embedding store (dsim/embeddings/store.py): append-only shards, bulk lookups, many writers, torn tails, compaction,
old per-file caches, and the ``dsim cache`` commands (info, gc, migrate, compact)."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dsim.errors import DsimError
from dsim.embeddings.store import SMALL_SHARD_ROWS, VectorStore, identities, open_identity
from dsim_testing import run_dsim, write_crops

IDENTITY = "ab" * 32


def h(i: int) -> str:
    return hashlib.sha256(f"image {i}".encode()).hexdigest()


def vectors(ids, dim: int = 8) -> np.ndarray:
    """A vector that is a function of the image (as an extractor's output is)."""
    ids = np.asarray(list(ids), dtype=np.float32)
    return (ids[:, None] * 10 + np.arange(dim, dtype=np.float32)[None, :]).astype(np.float32)


def store(root, dim: int = 8) -> VectorStore:
    return VectorStore(root, "test", IDENTITY, dim)


def test_append_then_look_up_gather_and_stream(tmp_path):
    with store(tmp_path) as s:
        s.append([h(i) for i in range(100)], vectors(range(100)))
        s.append([h(i) for i in range(100, 150)], vectors(range(100, 150)))
    fresh = store(tmp_path)
    assert len(fresh) == 150
    asked = [h(149), h(3), h(999), h(0)]
    assert fresh.contains(asked).tolist() == [True, True, False, True]
    np.testing.assert_array_equal(fresh.gather([h(149), h(3), h(0)]), vectors([149, 3, 0]))
    with pytest.raises(DsimError, match="1 of 2 vectors are missing"):
        fresh.gather([h(1), h(999)])
    streamed = np.concatenate(list(fresh.iter_gather([h(i) for i in range(150)], chunk=64)))
    np.testing.assert_array_equal(streamed, vectors(range(150)))
    assert fresh.get(h(7)).tolist() == vectors([7])[0].tolist() and fresh.get(h(999)) is None


def test_a_process_sees_its_own_appends_and_others_after_refresh(tmp_path):
    writer, reader = store(tmp_path), store(tmp_path)
    assert not reader.contains([h(1)])[0]
    writer.append([h(1)], vectors([1]))
    assert writer.contains([h(1)])[0]          # its own, without reloading
    assert not reader.contains([h(1)])[0]      # another's: after a refresh
    reader.refresh()
    assert reader.contains([h(1)])[0]
    writer.close()


def test_only_complete_rows_count_after_a_torn_append(tmp_path):
    with store(tmp_path) as s:
        s.append([h(i) for i in range(10)], vectors(range(10)))
    (keys,) = (tmp_path / "test-abababababababab" / "shards").glob("*.keys")
    with open(keys, "ab") as handle:  # a writer killed between writing a row's key bytes
        handle.write(bytes.fromhex(h(10))[:20])
    vec = keys.with_suffix(".vec")
    with open(vec, "r+b") as handle:  # ... and one killed half-way through a row's vector
        handle.truncate(vec.stat().st_size - 3)
    fresh = store(tmp_path)
    assert len(fresh) == 9 and fresh.contains([h(8), h(9), h(10)]).tolist() == [True, False, False]
    np.testing.assert_array_equal(fresh.gather([h(i) for i in range(9)]), vectors(range(9)))


def _writer(args):
    root, start, stop, batch = args
    with VectorStore(root, "test", IDENTITY, 8) as s:
        for first in range(start, stop, batch):
            ids = range(first, min(first + batch, stop))
            s.append([h(i) for i in ids], vectors(ids))
    return os.getpid()


def test_many_processes_write_at_once_without_corruption(tmp_path):
    """Four writers with overlapping ranges (the same images embedded twice): every vector is there once
    per hash, each equal to its image's vector, and the small shards were merged."""
    jobs = [(str(tmp_path), 0, 3000, 50), (str(tmp_path), 2000, 5000, 64), (str(tmp_path), 4500, 6000, 7),
            (str(tmp_path), 0, 100, 1)]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_writer, jobs)
    s = store(tmp_path)
    assert len(s) == 6000
    np.testing.assert_array_equal(s.gather([h(i) for i in range(6000)]), vectors(range(6000)))
    shards = s.shards()
    assert sum(shard.rows < SMALL_SHARD_ROWS for shard in shards) <= 1, [x.rows for x in shards]


def test_kill_9_mid_append_loses_no_finished_batch(tmp_path):
    code = ("import sys, hashlib, numpy as np; from dsim.embeddings.store import VectorStore\n"
            "s = VectorStore(sys.argv[1], 'test', 'ab' * 32, 8)\n"
            "for b in range(100000):\n"
            "    ids = range(b * 16, b * 16 + 16)\n"
            "    s.append([hashlib.sha256(f'image {i}'.encode()).hexdigest() for i in ids],\n"
            "             (np.asarray(list(ids), np.float32)[:, None] * 10 + np.arange(8, dtype=np.float32)))\n"
            "    print(b, flush=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    done = -1
    for line in proc.stdout:
        done = int(line)
        if done >= 40:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    s = store(tmp_path)
    finished = (done + 1) * 16
    assert len(s) >= finished  # every batch it reported finished (and perhaps the one in flight)
    np.testing.assert_array_equal(s.gather([h(i) for i in range(finished)]), vectors(range(finished)))
    with store(tmp_path) as later:  # the dead writer's shard is closed: a later writer merges it
        later.append([h(10**6)], vectors([10**6]))
    assert len(store(tmp_path)) == len(s) + 1 and len(store(tmp_path).shards()) == 1


def test_compaction_keeps_big_shards_and_merges_small_finished_ones(tmp_path):
    with store(tmp_path) as big:
        big.append([h(i) for i in range(SMALL_SHARD_ROWS)], vectors(range(SMALL_SHARD_ROWS)))
    for i in range(5):
        with store(tmp_path) as small:
            small.append([h(10**6 + i)], vectors([10**6 + i]))
    s = store(tmp_path)
    assert sorted(shard.rows for shard in s.shards()) == [5, SMALL_SHARD_ROWS]
    active = store(tmp_path)
    active.append([h(5 * 10**6)], vectors([5 * 10**6]))  # still open: never merged under its writer
    assert store(tmp_path).compact() == 0
    active.close()
    assert sorted(shard.rows for shard in store(tmp_path).shards()) == [6, SMALL_SHARD_ROWS]


def test_a_reader_survives_a_compaction_under_it(tmp_path):
    for i in range(3):
        with store(tmp_path) as s:
            s.append([h(i)], vectors([i]))
    reader = store(tmp_path)
    assert reader.contains([h(0)])[0]
    writer = store(tmp_path)
    writer.append([h(3)], vectors([3]))
    writer.close()  # merges the shards the reader indexed
    np.testing.assert_array_equal(reader.gather([h(0), h(1), h(2)]), vectors([0, 1, 2]))


def test_a_store_of_another_dimension_is_a_one_line_error(tmp_path):
    with store(tmp_path, dim=8) as s:
        s.append([h(1)], vectors([1]))
    with pytest.raises(DsimError, match="holds 8-d vectors .* not 4-d"):
        store(tmp_path, dim=4)


def _legacy_cache(root: Path, n: int) -> Path:
    folder = root / "test-abababababababab"
    for i in range(n):
        entry = folder / h(i)[:2] / f"{h(i)}.npy"
        entry.parent.mkdir(parents=True, exist_ok=True)
        np.save(entry, vectors([i])[0])
    (folder / "extractor.json").write_text('{"name": "test", "dim": 8}')
    return folder


def test_an_old_per_file_cache_is_read_and_migrated(tmp_path):
    folder = _legacy_cache(tmp_path, 20)
    s = store(tmp_path)
    assert len(s) == 20 and s.info()["legacy_files"] == 20
    np.testing.assert_array_equal(s.gather([h(3), h(19)]), vectors([3, 19]))
    assert s.migrate_legacy() == 20
    assert not list(folder.rglob("*.npy"))
    fresh = store(tmp_path)
    assert len(fresh) == 20 and fresh.info()["legacy_files"] == 0 and len(fresh.shards()) == 1
    np.testing.assert_array_equal(fresh.gather([h(i) for i in range(20)]), vectors(range(20)))


def test_a_large_bulk_lookup(tmp_path):
    n = 200_000
    with store(tmp_path, dim=2) as s:
        s.append([h(i) for i in range(n)], vectors(range(n), dim=2))
    fresh = store(tmp_path, dim=2)
    asked = [h(i) for i in range(0, 2 * n, 2)]  # half present
    started = time.perf_counter()
    found = fresh.contains(asked)
    assert time.perf_counter() - started < 20
    assert found.sum() == n // 2 and found[: n // 2].all() and not found[n // 2:].any()


@pytest.mark.slow
def test_cache_info_gc_migrate_and_compact_commands(tmp_path):
    write_crops(tmp_path / "kept", 6, seed=1)
    write_crops(tmp_path / "gone", 6, seed=2)
    cache = tmp_path / "cache"
    for folder in ("kept", "gone"):
        run_dsim("embed", folder, "--extractor", "pixels", "--out", f"{folder}.npz", "--cache-dir", str(cache),
                 cwd=tmp_path)
    _legacy_cache(cache, 4)
    info = run_dsim("cache", "info", "--cache-dir", str(cache), cwd=tmp_path).stdout
    assert "pixels-" in info and " 12 " in info and "test-abababababababab" in info and info.rstrip().endswith("cache")
    dry = run_dsim("cache", "gc", "--keep", "kept", "--cache-dir", str(cache), "--dry-run", cwd=tmp_path).stdout
    assert "drop 6 of 12 entries [dry run]" in dry and "test-abababababababab: drop the whole identity" in dry
    assert sum(len(open_identity(f)) for f in identities(cache)) == 12 + 4
    run_dsim("cache", "gc", "--keep", "kept", "--cache-dir", str(cache), cwd=tmp_path)
    (pixels,) = [open_identity(f) for f in identities(cache)]
    assert len(pixels) == 6 and not (cache / "test-abababababababab").exists()
    again = run_dsim("embed", "kept", "--extractor", "pixels", "--out", "k2.npz", "--cache-dir", str(cache),
                     cwd=tmp_path).stdout
    assert "(0 embedded now, 6 from the cache)" in again
    assert "nothing to migrate" in run_dsim("cache", "migrate", "--cache-dir", str(cache), cwd=tmp_path).stdout
    assert "nothing to merge" in run_dsim("cache", "compact", "--cache-dir", str(cache), cwd=tmp_path).stdout
