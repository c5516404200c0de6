"""The memoised FID statistics (``dsim.embeddings.stats_files.memoised_stats``) against streaming them from the store.

A store is filled with N random D-d vectors (written, not forwarded), then, each in a fresh process:
``stream`` computes the statistics from the shards as a cell without the memo does (and as torch-fidelity's
rerun would from its cached features), ``first`` is the first memoised call (the same pass plus writing the
memo), ``memo`` is a rerun that reads the memo. Each row: seconds, ``rchar`` (read() calls only: the
shards are memory-mapped, so their pages do not count), peak RSS.

    python benchmarks/bench_fid_memo.py --n 1000000 --dim 768 --out benchmarks/results-fid-memo-2core.json
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
cache, n, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = VectorStore(cache, "bench", "b" * 64, dim)
rng = np.random.default_rng(0)
for start in range(0, n, 65536):
    count = min(65536, n - start)
    keys = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(start, start + count)]
    store.append(keys, rng.random((count, dim), dtype=np.float32))
store.close()
"""

RUN = r"""
import hashlib, json, resource, sys, time
from dsim.embeddings.embed import Embeddings
from dsim.metrics._fid import FeatureStats
from dsim.embeddings.stats_files import memoised_stats
from dsim.embeddings.store import VectorStore
cache, n, dim, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
store = VectorStore(cache, "bench", "b" * 64, dim)
hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]
emb = Embeddings(ids=hashes, hashes=hashes, root=".", fingerprint="", extractor="bench", extractor_identity="b" * 64,
                 weights_checksum="none", random_weights=True, store=store)
start = time.perf_counter()
stats = FeatureStats.of_chunks(emb.iter_features()) if mode == "stream" else memoised_stats(emb)
seconds = time.perf_counter() - start
rchar = int(next(l for l in open("/proc/self/io") if l.startswith("rchar")).split()[1])
print(json.dumps({"mode": mode, "n": stats.n, "seconds": round(seconds, 3), "rchar_mb": round(rchar / 1e6, 1),
                  "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dsim-fid-memo-") as work:
        cache = str(Path(work) / "cache")
        subprocess.run([sys.executable, "-c", FILL, cache, str(args.n), str(args.dim)], check=True)
        rows = []
        for mode in ("stream", "first", "memo"):
            done = subprocess.run([sys.executable, "-c", RUN, cache, str(args.n), str(args.dim), mode], check=True,
                                  capture_output=True, text=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    if args.out:  # one run per (n, dim), kept beside the others already in the file
        out = Path(args.out)
        runs = json.loads(out.read_text()).get("runs", []) if out.exists() else []
        runs = [r for r in runs if (r["n"], r["dim"]) != (args.n, args.dim)] + [{"n": args.n, "dim": args.dim, "rows": rows}]
        out.write_text(json.dumps({"machine": "2 cores, 24 GB, no GPU", "command": "python benchmarks/bench_fid_memo.py "
                                   "--n N --dim D --out FILE", "runs": runs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
