"""``dsim select`` at scale: I_dist of every pool image and the three strategies, from a real store.

A store is filled with a train set of M and a pool of N random D-d vectors (written, not forwarded; the
pool shifted by 0.5), then, each in a fresh process so that its peak RSS is its own: ``i_dist`` is
:func:`dsim.analysis.selection.pool_distances` streamed from the store; ``band`` / ``kcenter`` /
``random`` are that plus the strategy's first 7 picks (``pick_seconds`` is the strategy alone). The peer,
where it fits, is what one writes with scikit-learn and SciPy: ``PCA(25)`` fitted on the union and
``cdist(pool, train).sum(1)`` (an N×M matrix), and for k-center ``cdist(pool, train).min(1)`` then the same
greedy loop; it runs at N = 10k only (at 100k the N×M matrix alone is 8 GB). ``store_mb`` is the pool's
and train's features as stored (N + M)·D·4 bytes: the bound memory is held to.

    python benchmarks/bench_select.py --pool 10000 100000 --train 10000 --dim 1280 --out benchmarks/results-select-2core.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

FILL = r"""
import hashlib, sys
import numpy as np
from dsim.embeddings.store import VectorStore
cache, side, n, dim, shift = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
store = VectorStore(cache, "bench", "b" * 64, dim)
rng = np.random.default_rng(0 if side == "train" else 1)
for start in range(0, n, 65536):
    count = min(65536, n - start)
    keys = [hashlib.sha256(f"{side}{i}".encode()).hexdigest() for i in range(start, start + count)]
    store.append(keys, (rng.standard_normal((count, dim), dtype=np.float32) + shift))
store.close()
"""

RUN = r"""
import hashlib, json, resource, sys, time
import numpy as np
from dsim.embeddings.embed import Embeddings
from dsim.embeddings.store import VectorStore
from dsim.analysis.selection import min_max_scaled, pick_order, pool_distances
cache, n_train, n_pool, dim, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
store = VectorStore(cache, "bench", "b" * 64, dim)

def side(name, n):
    hashes = [hashlib.sha256(f"{name}{i}".encode()).hexdigest() for i in range(n)]
    return Embeddings(ids=hashes, hashes=hashes, root=".", fingerprint="", extractor="bench",
                      extractor_identity="b" * 64, weights_checksum="none", random_weights=True, store=store)

def rss():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

train, pool = side("train", n_train), side("pool", n_pool)
base = rss()
start = time.perf_counter()
row = {"mode": mode, "pool": n_pool, "train": n_train, "dim": dim}
if mode.startswith("peer"):
    from scipy.spatial.distance import cdist
    from sklearn.decomposition import PCA
    x, y = train.features.astype(np.float64), pool.features.astype(np.float64)
    if mode == "peer_i_dist":
        pca = PCA(25, svd_solver="full").fit(np.concatenate([x, y]))
        i_dist = cdist(pca.transform(y), pca.transform(x)).sum(1)
    else:  # peer_kcenter
        nearest = cdist(y, x, "sqeuclidean").min(1)
        for _ in range(7):
            j = int(np.argmax(nearest))
            nearest = np.minimum(nearest, cdist(y, y[j:j + 1], "sqeuclidean")[:, 0])
            nearest[j] = -np.inf
else:
    i_dist = pool_distances(train, pool)
    row["i_dist_seconds"] = round(time.perf_counter() - start, 2)
    if mode != "i_dist":
        picked = time.perf_counter()
        pick_order(mode, train, pool, min_max_scaled(i_dist), count=7, seed=0)
        row["pick_seconds"] = round(time.perf_counter() - picked, 2)
row.update(seconds=round(time.perf_counter() - start, 2), max_rss_mb=rss(), rss_before_mb=base,
           store_mb=round((n_train + n_pool) * dim * 4 / 2**20, 1))
print(json.dumps(row))
"""

MODES = ("i_dist", "band", "kcenter", "random")
PEER_MAX_POOL = 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--train", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--modes", nargs="+", default=None, help="only these rows (default: all)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = []
    for n_pool in args.pool:
        with tempfile.TemporaryDirectory(prefix="dsim-select-") as work:
            cache = str(Path(work) / "cache")
            for side, n, shift in (("train", args.train, "0"), ("pool", n_pool, "0.5")):
                subprocess.run([sys.executable, "-c", FILL, cache, side, str(n), str(args.dim), shift], check=True)
            modes = MODES + (("peer_i_dist", "peer_kcenter") if n_pool <= PEER_MAX_POOL else ())
            for mode in [m for m in modes if args.modes is None or m in args.modes]:
                argv = [sys.executable, "-c", RUN, cache, str(args.train), str(n_pool), str(args.dim), mode]
                done = subprocess.run(argv, check=True, capture_output=True, text=True)
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(json.dumps(rows[-1]), flush=True)
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                {
                    "machine": "2 cores, 24 GB, no GPU",
                    "command": "python benchmarks/bench_select.py " + " ".join(sys.argv[1:]),
                    "rows": rows,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
