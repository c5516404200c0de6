"""Embedding store backends side by side: dsim's append-only shards, SQLite, LMDB.

What a store of millions of vectors must do fast (issue: scale), each timed on the same data:

- ``write``: N vectors appended in batches of 256 (as an embedding run does), one writer;
- ``concurrent write``: the same N vectors from 4 processes at once (a parallel grid, sharded embedding);
- ``bulk lookup``: which of N hashes (half of them absent) are stored;
- ``gather``: 100k vectors at random positions into one matrix (a sampled kNN metric);
- ``stream``: every vector, in hash order of a dataset listing, in chunks (streamed FID statistics);
- the number and total size of its files (what DVC pushes).

Run: ``python benchmarks/bench_store.py --n 1000000 --dim 64 --out benchmarks/results-store-2core.json``
(LMDB needs ``pip install lmdb``; without it that backend is skipped).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dsim.embeddings.store import VectorStore  # noqa: E402

BATCH = 256
IDENTITY = "be" * 32


def make_hashes(n: int) -> list[str]:
    return [hashlib.sha256(f"img{i}".encode()).hexdigest() for i in range(n)]


def make_vectors(rows: np.ndarray, dim: int) -> np.ndarray:
    rng = np.random.default_rng(rows[0] if len(rows) else 0)
    return rng.standard_normal((len(rows), dim), dtype=np.float32)


# ---------------------------------------------------------------------------------------------------
# backends: open(root, dim) → object with write(hashes, vectors), contains(hashes), gather(hashes), close()


class Shards:
    name = "dsim shards"

    def __init__(self, root, dim):
        self.store = VectorStore(root, "bench", IDENTITY, dim)

    def write(self, hashes, vectors):
        self.store.append(hashes, vectors)

    def contains(self, hashes):
        return self.store.contains(hashes)

    def gather(self, hashes):
        return self.store.gather(hashes)

    def close(self):
        self.store.close()


class SQLite:
    name = "SQLite (WAL)"

    def __init__(self, root, dim):
        self.dim = dim
        Path(root).mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(Path(root) / "store.sqlite", timeout=600, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS v (k BLOB PRIMARY KEY, x BLOB) WITHOUT ROWID")

    def write(self, hashes, vectors):
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany("INSERT OR IGNORE INTO v VALUES (?, ?)",
                            [(bytes.fromhex(h), v.tobytes()) for h, v in zip(hashes, vectors)])
        self.db.execute("COMMIT")

    def _fetch(self, hashes, column):
        keys = [bytes.fromhex(h) for h in hashes]
        found = {}
        for start in range(0, len(keys), 900):
            part = keys[start:start + 900]
            rows = self.db.execute(f"SELECT k, {column} FROM v WHERE k IN ({','.join('?' * len(part))})", part)
            found.update(rows)
        return keys, found

    def contains(self, hashes):
        keys, found = self._fetch(hashes, "1")
        return np.array([k in found for k in keys])

    def gather(self, hashes):
        keys, found = self._fetch(hashes, "x")
        return np.stack([np.frombuffer(found[k], dtype=np.float32) for k in keys])

    def close(self):
        self.db.close()


class LMDB:
    name = "LMDB"

    def __init__(self, root, dim):
        import lmdb

        Path(root).mkdir(parents=True, exist_ok=True)
        self.env = lmdb.open(str(root), map_size=1 << 38, subdir=True, lock=True)

    def write(self, hashes, vectors):
        with self.env.begin(write=True) as txn:
            for h, v in zip(hashes, vectors):
                txn.put(bytes.fromhex(h), v.tobytes(), overwrite=False)

    def contains(self, hashes):
        with self.env.begin() as txn:
            return np.array([txn.get(bytes.fromhex(h)) is not None for h in hashes])

    def gather(self, hashes):
        with self.env.begin() as txn:
            return np.stack([np.frombuffer(txn.get(bytes.fromhex(h)), dtype=np.float32) for h in hashes])

    def close(self):
        self.env.close()


BACKENDS = {"shards": Shards, "sqlite": SQLite, "lmdb": LMDB}


def _write_part(args):
    backend, root, dim, start, stop, hashes = args
    store = BACKENDS[backend](root, dim)
    for first in range(start, stop, BATCH):
        rows = np.arange(first, min(first + BATCH, stop))
        store.write(hashes[first:first + len(rows)], make_vectors(rows, dim))
    store.close()


def files_of(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def bench(backend: str, n: int, dim: int, workdir: Path) -> dict:
    hashes = make_hashes(n)
    absent = make_hashes(2 * n)[n:]
    root = workdir / backend
    result = {"backend": BACKENDS[backend].name, "n": n, "dim": dim}

    started = time.perf_counter()
    _write_part((backend, root, dim, 0, n, hashes))
    result["write_s"] = time.perf_counter() - started

    store = BACKENDS[backend](root, dim)
    asked = [x for pair in zip(hashes, absent) for x in pair]
    started = time.perf_counter()
    found = store.contains(asked)
    result["bulk_lookup_s"] = time.perf_counter() - started
    assert found.sum() == n, (backend, found.sum())

    rng = np.random.default_rng(0)
    picked = rng.choice(n, size=min(100_000, n), replace=False)
    started = time.perf_counter()
    got = store.gather([hashes[i] for i in picked])
    result["gather_100k_s"] = time.perf_counter() - started
    check = picked[:50]
    for i in check:
        first = (i // BATCH) * BATCH
        expected = make_vectors(np.arange(first, min(first + BATCH, n)), dim)[i - first]
        assert np.array_equal(got[list(picked).index(i)], expected), backend

    started = time.perf_counter()
    total = 0.0
    for start in range(0, n, 8192):
        total += float(store.gather(hashes[start:start + 8192]).sum())
    result["stream_all_s"] = time.perf_counter() - started
    store.close()
    result["files"], result["bytes"] = files_of(root)

    concurrent = workdir / f"{backend}-concurrent"
    parts = [(backend, concurrent, dim, k * n // 4, (k + 1) * n // 4, hashes) for k in range(4)]
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(_write_part, parts)
    result["concurrent_write_4_s"] = time.perf_counter() - started
    check_store = BACKENDS[backend](concurrent, dim)
    assert check_store.contains(hashes).all(), backend
    check_store.close()
    result["concurrent_files"], _ = files_of(concurrent)
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(concurrent, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--backends", default="shards,sqlite,lmdb")
    parser.add_argument("--workdir", default=None, help="where the stores are written (default: a temp dir)")
    parser.add_argument("--out", default=None, help="JSON file for the raw results")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="dsim-bench-store-"))
    results = []
    for backend in args.backends.split(","):
        if backend == "lmdb":
            try:
                import lmdb  # noqa: F401
            except ImportError:
                print("lmdb not installed (pip install lmdb): skipped", file=sys.stderr)
                continue
        os.environ["DSIM_STORE_COMPACT"] = "1"
        row = bench(backend, args.n, args.dim, workdir)
        results.append(row)
        print(json.dumps(row), flush=True)
    header = f"{'backend':14s} {'write':>8s} {'4 writers':>10s} {'lookup':>8s} {'gather':>8s} {'stream':>8s} {'files':>6s} {'MB':>8s}"
    print(f"\n{args.n} vectors × {args.dim}-d float32, batches of {BATCH}; seconds\n{header}")
    for r in results:
        print(f"{r['backend']:14s} {r['write_s']:8.2f} {r['concurrent_write_4_s']:10.2f} {r['bulk_lookup_s']:8.2f} "
              f"{r['gather_100k_s']:8.2f} {r['stream_all_s']:8.2f} {r['files']:6d} {r['bytes'] / 1e6:8.1f}")
    if args.out:
        meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                "python": platform.python_version()}
        Path(args.out).write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
