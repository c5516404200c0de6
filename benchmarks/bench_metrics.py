"""Speed and memory of dsim's feature-level metrics against the reference implementations, in one run.

Each measurement runs in a fresh (spawned) process that generates its own seeded features, so peak
memory is that computation's alone: ``peak MB`` is the growth of the process's peak resident set
(VmHWM, reset before the call) over its resident set before the call — torch, NumPy and BLAS buffers
alike — and ``traced MB`` is tracemalloc's peak (NumPy and Python allocations only). Ratios are
``peer seconds / dsim seconds``: above 1, dsim is faster.

    .venv/bin/python benchmarks/bench_metrics.py                 # defaults: a few minutes on 2 cores
    .venv/bin/python benchmarks/bench_metrics.py --only fid kid --fid-n 5000 --kid-n 2000 --out bench.json

Cases (all features float32, as extractors produce them; dsim computes in float64 where it matters):

* ``fid``: dsim ``fid`` vs pytorch-fid's route (``np.mean``/``np.cov`` + ``calculate_frechet_distance``,
  i.e. scipy ``sqrtm``), end to end; ``fid_from_stats``: the same, given the statistics.
* ``kid``: dsim ``kid_poly`` vs torch-fidelity's ``kid_features_to_metric`` on the same subsets, at each
  precision, for each ``--kid-n``: dsim's default (float64) against torch-fidelity fed float64 features,
  and dsim's ``kernel_dtype="float32"`` (float32 products, float64 sums) against torch-fidelity fed the
  float32 features (its native path: products and sums in float32); the float32 rows also give each
  side's relative error against dsim's float64 value. dsim switches from per-subset kernels to full
  kernels below ~10k samples per set at the defaults; see ``dsim/metrics/_mmd.py``.
* ``prdc``: dsim ``prdc`` vs the ``prdc`` package's ``compute_prdc`` (full N×M distance matrices), and,
  with ``--torch-fidelity-prc``, torch-fidelity's precision/recall (``calculate_precision_recall_full``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing as mp
import os
import platform
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

MIXING_SEED = 12345


def features(n: int, d: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """Correlated Gaussian features (a fixed random mixing of iid normals), float32."""
    mixing = np.random.default_rng(MIXING_SEED).normal(size=(d, d)).astype(np.float32) / np.float32(np.sqrt(d))
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32) @ mixing
    return x * np.float32(scale) + np.float32(shift)


def pair(n: int, d: int):
    return features(n, d, seed=1), features(n, d, seed=2, shift=0.05, scale=1.05)


# ---------------------------------------------------------------------------------------------------
# one measurement per spawned process


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _measure(fn, warm_up=None):
    """Time ``fn()`` once, after an untimed ``warm_up()`` on small inputs (library loading, first calls)."""
    if warm_up is not None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warm_up()
    try:  # reset the peak-RSS counter (Linux ≥ 4.0); without it, peak MB is an upper bound
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    before = _rss_kib("VmRSS")
    tracemalloc.start()
    start = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - start
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return dict(seconds=seconds, peak_mb=(_rss_kib("VmHWM") - before) / 1024, traced_mb=traced / 2**20, value=value)


def _quiet(fn, *args, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


def _case(name: str, args: dict):
    """Build inputs (untimed), then time one computation; returns the measurement dict."""
    import torch

    if name.startswith("fid"):
        x, y = pair(args["fid_n"], args["fid_d"])
        small = x[:300, :64], y[:300, :64]
        if name == "fid:dsim":
            from dsim.metrics import fid

            return _measure(lambda: fid(x, y)["fid"], lambda: fid(*small))
        if name == "fid:pytorch-fid":
            from pytorch_fid.fid_score import calculate_frechet_distance

            def run(x, y):
                stats = [(f.mean(0, dtype=np.float64), np.cov(f, rowvar=False)) for f in (x, y)]
                return float(_quiet(calculate_frechet_distance, *stats[0], *stats[1]))

            return _measure(lambda: run(x, y), lambda: run(*small))
        stats = [(f.astype(np.float64).mean(0), np.cov(f, rowvar=False)) for f in (x, y)]
        small = [(m[:64], s[:64, :64]) for m, s in stats]
        if name == "fid_from_stats:dsim":
            from dsim.metrics import fid_from_stats

            return _measure(lambda: fid_from_stats(*stats[0], *stats[1]), lambda: fid_from_stats(*small[0], *small[1]))
        if name == "fid_from_stats:pytorch-fid":
            from pytorch_fid.fid_score import calculate_frechet_distance

            return _measure(lambda: float(_quiet(calculate_frechet_distance, *stats[0], *stats[1])),
                            lambda: _quiet(calculate_frechet_distance, *small[0], *small[1]))
    if name.startswith("kid"):
        x, y = pair(args["kid_n"], args["kid_d"])
        subsets = dict(subsets=args["kid_subsets"], subset_size=args["kid_subset_size"], seed=0)
        few = dict(subsets=2, subset_size=100, seed=0)
        if name.startswith("kid:dsim"):
            from dsim.metrics import kid_poly

            kernel_dtype = name.rsplit(":", 1)[1]
            return _measure(lambda: kid_poly(x, y, **subsets, kernel_dtype=kernel_dtype)["kid_poly"],
                            lambda: kid_poly(x[:200], y[:200], **few, kernel_dtype=kernel_dtype))
        from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kid_features_to_metric

        dtype = np.float64 if name.endswith("float64") else np.float32
        tx, ty = torch.from_numpy(x.astype(dtype)), torch.from_numpy(y.astype(dtype))

        def run(tx, ty, subsets, subset_size, seed):
            return float(kid_features_to_metric(
                tx, ty, kid_subsets=subsets, kid_subset_size=subset_size, rng_seed=seed, verbose=False,
                kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1.0,
            )[KEY_METRIC_KID_MEAN])

        return _measure(lambda: run(tx, ty, **subsets), lambda: run(tx[:200], ty[:200], **few))
    if name.startswith("prdc") or name.startswith("prc"):
        x, y = pair(args["prdc_n"], args["prdc_d"])
        k = args["nearest_k"]
        small = x[:200], y[:200]
        if name == "prdc:dsim":
            from dsim.metrics import prdc

            return _measure(lambda: dict(prdc(x, y, nearest_k=k)), lambda: prdc(*small, nearest_k=k))
        if name == "prdc:prdc":
            from prdc import compute_prdc

            return _measure(lambda: {key: float(v) for key, v in _quiet(compute_prdc, x, y, k).items()},
                            lambda: _quiet(compute_prdc, *small, k))
        if name == "prc:torch-fidelity":
            from torch_fidelity.metric_prc import calculate_precision_recall_full

            tx, ty = torch.from_numpy(x), torch.from_numpy(y)
            return _measure(lambda: dict(zip(("precision", "recall"), calculate_precision_recall_full(ty, tx, k))),
                            lambda: calculate_precision_recall_full(ty[:200], tx[:200], k))
    raise ValueError(f"unknown case {name}")


def _child(name, args, queue):
    try:
        queue.put(_case(name, args))
    except BaseException as exc:  # report, don't hang the parent
        queue.put(dict(error=f"{type(exc).__name__}: {exc}"))


def run_case(name: str, args: dict) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(name, args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    if "error" in result:
        raise RuntimeError(f"{name}: {result['error']}")
    return result


# ---------------------------------------------------------------------------------------------------
# rows of the table


def _rel(a, b) -> float:
    if isinstance(a, dict):
        return max(_rel(a[key], b[key]) for key in b)
    return abs(a - b) / max(abs(b), 1e-300)


def compare(metric: str, size: str, ours: dict, peer: str, theirs: dict, exact=None) -> dict:
    """One row; ``exact``: a float64 value both sides are also measured against (``*_rel_err``)."""
    row = dict(
        metric=metric, size=size, peer=peer,
        dsim_s=ours["seconds"], peer_s=theirs["seconds"], ratio=theirs["seconds"] / ours["seconds"],
        dsim_peak_mb=ours["peak_mb"], peer_peak_mb=theirs["peak_mb"],
        dsim_traced_mb=ours["traced_mb"], peer_traced_mb=theirs["traced_mb"],
        rel_diff=_rel(ours["value"], theirs["value"]), dsim_value=ours["value"], peer_value=theirs["value"],
    )
    if exact is not None:
        row.update(dsim_rel_err=_rel(ours["value"], exact), peer_rel_err=_rel(theirs["value"], exact))
    return row


def best_of(name: str, args: dict, repeat: int) -> dict:
    runs = [run_case(name, args) for _ in range(repeat)]
    print(f"  {name}: " + ", ".join(f"{r['seconds']:.2f}s" for r in runs), file=sys.stderr, flush=True)
    return min(runs, key=lambda r: r["seconds"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--only", nargs="+", choices=["fid", "kid", "prdc"], default=["fid", "kid", "prdc"])
    p.add_argument("--fid-n", type=int, default=10_000, help="samples per set for FID (default 10000)")
    p.add_argument("--fid-d", type=int, default=2048)
    p.add_argument("--kid-n", type=int, nargs="+", default=[2_000, 5_000, 10_000, 20_000],
                   help="samples per set for KID, one row group each (default 2000 5000 10000 20000)")
    p.add_argument("--kid-d", type=int, default=2048)
    p.add_argument("--kid-subsets", type=int, default=100)
    p.add_argument("--kid-subset-size", type=int, default=1000)
    p.add_argument("--prdc-n", type=int, default=20_000, help="samples per set for PRDC (default 20000)")
    p.add_argument("--prdc-d", type=int, default=2048)
    p.add_argument("--nearest-k", type=int, default=3)
    p.add_argument("--torch-fidelity-prc", action="store_true", help="also time torch-fidelity's precision/recall")
    p.add_argument("--no-kid-float64", action="store_true", help="skip torch-fidelity KID on float64 input")
    p.add_argument("--repeat", type=int, default=1, help="runs per case; the fastest counts (default 1)")
    p.add_argument("--out", type=Path, help="also write the rows and the machine as JSON here")
    args = p.parse_args(argv)
    a = vars(args)
    rows = []
    if "fid" in args.only:
        size = f"{args.fid_n}×{args.fid_d} each"
        ours = best_of("fid:dsim", a, args.repeat)
        rows.append(compare("FID", size, ours, "pytorch-fid (scipy sqrtm)", best_of("fid:pytorch-fid", a, args.repeat)))
        ours = best_of("fid_from_stats:dsim", a, args.repeat)
        rows.append(compare("FID, from statistics", f"{args.fid_d}×{args.fid_d} covariances", ours,
                            "pytorch-fid (scipy sqrtm)", best_of("fid_from_stats:pytorch-fid", a, args.repeat)))
    for kid_n in args.kid_n if "kid" in args.only else []:
        b = dict(a, kid_n=kid_n)
        size = f"{args.kid_subsets}×{args.kid_subset_size} of {kid_n}×{args.kid_d}"
        exact = best_of("kid:dsim:float64", b, args.repeat)
        if not args.no_kid_float64:
            rows.append(compare("KID (poly), float64", size, exact, "torch-fidelity, float64 input",
                                best_of("kid:torch-fidelity:float64", b, args.repeat)))
        rows.append(compare("KID (poly), float32 products", size, best_of("kid:dsim:float32", b, args.repeat),
                            "torch-fidelity, float32 input", best_of("kid:torch-fidelity:float32", b, args.repeat),
                            exact=exact["value"]))
    if "prdc" in args.only:
        size = f"{args.prdc_n}×{args.prdc_n}, {args.prdc_d}-d, k={args.nearest_k}"
        ours = best_of("prdc:dsim", a, args.repeat)
        rows.append(compare("PRDC", size, ours, "prdc (compute_prdc)", best_of("prdc:prdc", a, args.repeat)))
        if args.torch_fidelity_prc:
            theirs = best_of("prc:torch-fidelity", a, args.repeat)
            ours_pr = dict(ours, value={key: ours["value"][key] for key in ("precision", "recall")})
            rows.append(compare("precision/recall", size, ours_pr, "torch-fidelity (full)", theirs))
    print(table(rows))
    machine = dict(
        cpu=platform.processor() or _cpu_model(), cores=os.cpu_count(), python=platform.python_version(),
        load_average=os.getloadavg(),
    )
    print(f"\nmachine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, "
          f"load average at end {tuple(round(v, 2) for v in machine['load_average'])}")
    if args.out:
        args.out.write_text(json.dumps(dict(machine=machine, args={k: str(v) for k, v in a.items()}, rows=rows),
                                       indent=2, default=float) + "\n")
    return 0


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def table(rows: list[dict]) -> str:
    lines = [
        "| metric | size | peer | dsim s | peer s | ratio (peer/dsim) | dsim peak MB | peer peak MB | rel. diff "
        "| rel. error vs float64, dsim / peer |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        errors = f"{r['dsim_rel_err']:.1e} / {r['peer_rel_err']:.1e}" if "dsim_rel_err" in r else ""
        lines.append(
            f"| {r['metric']} | {r['size']} | {r['peer']} | {r['dsim_s']:.2f} | {r['peer_s']:.2f} | "
            f"{r['ratio']:.1f}× | {r['dsim_peak_mb']:.0f} | {r['peer_peak_mb']:.0f} | {r['rel_diff']:.1e} | {errors} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
