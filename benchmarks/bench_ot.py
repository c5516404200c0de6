"""The optimal-transport metrics at 1k / 10k / 100k images per side: seconds and peak memory, and the peers.

Each measurement runs in a fresh Python process (peak RSS is that process's ``ru_maxrss``; the baseline of an
interpreter with torch, POT and geomloss imported is reported as ``import``). Features are seeded Gaussians,
``--dim`` dimensions (default 64), the candidate shifted by 0.5 in every coordinate.

- ``dsim``: ``dsim.metrics.compute(name, x, y, max_samples=...)`` as a cell runs it: ``emd``, ``sinkhorn`` and
  ``otdd`` (two labels per side) on a seeded sample of 4096 rows of a larger side (their default
  ``metric.params.max_samples``: they solve on a dense N×M problem), ``sliced_wasserstein`` on every row.
- ``peer``: the library call on the same rows: ``ot.emd2(a, b, ot.dist(x, y))`` for emd,
  ``ot.sliced_wasserstein_distance`` for sliced_wasserstein; for the Sinkhorn divergence both candidate
  solvers, geomloss' ``SamplesLoss("sinkhorn", debias=True)`` (tensorized) and POT's log-domain
  ``ot.bregman.empirical_sinkhorn_divergence`` (the same ε), which is how the solver was chosen.

Run: ``python benchmarks/bench_ot.py --out benchmarks/results-ot-2core.json`` (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

MEASURE = r"""
import json, resource, sys, time
import numpy as np, torch, ot, geomloss
import dsim.metrics as metrics
case = json.loads(sys.argv[1])
n, dim, what = case["n"], case["dim"], case["what"]
rng = np.random.default_rng(0)
x, y = rng.normal(size=(n, dim)), rng.normal(0.5, 1.0, size=(n, dim))
if case.get("rows"):
    x, y = x[: case["rows"]], y[: case["rows"]]
eps = 0.01 * 2 * x.var(0).sum()
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
started = time.perf_counter()
if what == "import":
    value = 0.0
elif what.startswith("dsim:"):
    name = what.split(":", 1)[1]
    extra = {"reference_labels": np.arange(len(x)) % 2, "candidate_labels": np.arange(len(y)) % 2} if name == "otdd" else {}
    kw = {"max_samples": case["max_samples"]} if case.get("max_samples") else {}
    if name == "sinkhorn":
        extra["epsilon"] = eps
    value = metrics.compute(name, x, y, **kw, **extra)[name]
elif what == "peer:emd":
    a, b = np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y))
    value = ot.emd2(a, b, ot.dist(x, y), numItermax=max(100_000, 100 * (len(x) + len(y))))
elif what == "peer:sliced":
    from dsim.metrics._transport import unit_directions
    value = ot.sliced_wasserstein_distance(x, y, p=2, projections=unit_directions(dim, 128, 0)) ** 2
elif what == "peer:sinkhorn_geomloss":
    loss = geomloss.SamplesLoss("sinkhorn", p=2, blur=(eps / 2) ** 0.5, scaling=0.9, debias=True, backend="tensorized")
    value = 2 * float(loss(torch.from_numpy(x), torch.from_numpy(y)))
elif what == "peer:sinkhorn_pot":
    value = float(ot.bregman.empirical_sinkhorn_divergence(x, y, eps, method="sinkhorn_log", numIterMax=1000, stopThr=1e-9))
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_before_mb": rss_before, "value": float(value)}))
"""

DENSE = 4096


def measure(case: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", MEASURE, json.dumps(case)], capture_output=True, text=True)
    if done.returncode != 0:
        return {**case, "error": done.stderr.strip().splitlines()[-1]}
    return {**case, **json.loads(done.stdout.strip().splitlines()[-1])}


def cases(sizes: list[int], dim: int) -> list[dict]:
    out = [{"n": sizes[0], "dim": dim, "what": "import"}]
    for n in sizes:
        for name in ("emd", "sinkhorn", "otdd"):
            out.append({"n": n, "dim": dim, "what": f"dsim:{name}", "max_samples": DENSE})
        out.append({"n": n, "dim": dim, "what": "dsim:sliced_wasserstein"})
        rows = min(n, DENSE)  # the peers on the rows dsim's dense metrics solve on
        out.append({"n": n, "dim": dim, "what": "peer:sliced"})
        if n <= DENSE:
            out += [{"n": n, "dim": dim, "what": w, "rows": rows} for w in ("peer:emd", "peer:sinkhorn_geomloss")]
            out.append({"n": n, "dim": dim, "what": "peer:sinkhorn_pot", "rows": rows})
    return out


def table(results: list[dict]) -> str:
    lines = [f"{'n/side':>7}  {'what':<26} {'rows':>6} {'seconds':>9} {'peak MB':>8}  value"]
    for r in results:
        rows = r.get("rows") or (min(r["n"], r["max_samples"]) if r.get("max_samples") else r["n"])
        if "error" in r:
            lines.append(f"{r['n']:>7}  {r['what']:<26} {rows:>6}  error: {r['error'][:60]}")
            continue
        lines.append(f"{r['n']:>7}  {r['what']:<26} {rows:>6} {r['seconds']:>9.2f} {r['max_rss_mb']:>8.0f}  {r['value']:.6g}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--out", default=None, help="a JSON file for the results")
    args = parser.parse_args()
    results = []
    for case in cases([int(s) for s in args.sizes.split(",")], args.dim):
        results.append(measure(case))
        print(table(results[-1:]).splitlines()[-1], flush=True)
    print(table(results))
    if args.out:
        Path(args.out).write_text(json.dumps({"machine": platform.platform(), "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
