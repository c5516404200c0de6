"""Scale on one machine: 10k, 100k and 1M images, side by side with the code before the scale work.

For generated datasets of 10k, 100k and 1M small images (16×16 PNGs, each unique) and 10k photo-sized
JPEGs (480×320), with the ``pixels`` extractor (and ``efficientnet_lite0`` on the 10k JPEGs), each code
version runs the same commands in fresh processes:

- ``cold``: ``dsim embed`` into an empty cache — seconds, images per second, peak RSS;
- ``warm``: the same command again — seconds, bytes read (``rchar`` and ``read_bytes`` of
  ``/proc/self/io``), peak RSS; files in the cache;
- ``listing``: listing an unchanged dataset twice (``dsim.data.images.list_images``): bytes read and seconds of
  the second listing (the hash memo against a full re-hash);
- ``grid``: a 3-metric grid (fid, kid_poly, cmmd; joblib, 2 workers) of two 10k sets from a cold cache —
  forward passes (images the cells embedded, from their ``result.json``);
- ``fid_1m``: an FID cell of the cached 1M set against the cached 100k set — seconds, peak RSS;
- ``startup``: ``import dsim`` and a fully cached cell (every embedding in the store; the metric computed and
  logged, ``force=true``), median of 5 fresh processes each;
- ``torch_fidelity``: the warm FID rerun on the 10k JPEGs (the folder against itself, so each tool embeds
  it once) against torch-fidelity's cached-feature rerun on the same folder, both with the same Inception
  weights file (random weights: offline).

"Before" is a git checkout of the commit before this work (``--old-src``, e.g. from ``git worktree add
/tmp/dsim-old c70c8d0``), run with ``PYTHONPATH`` pointing at it and the same virtual environment.

Run: ``python benchmarks/bench_scale.py --old-src /tmp/dsim-old --out benchmarks/results-scale-2core.json``
(about an hour on 2 cores; ``--sizes 10000`` for a short run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent

#: runs a dsim command (``sys.argv[1:]``) in this process and reports its cost as one JSON line in $MEASURE
WRAPPER = r"""
import atexit, json, os, resource, sys, time
started = time.perf_counter()
def report():
    io = dict(line.split(": ") for line in open("/proc/self/io").read().split("\n") if line)
    usage = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(os.environ["MEASURE"], "a") as out:
        out.write(json.dumps({"seconds": time.perf_counter() - started, "rchar": int(io["rchar"]),
                              "read_bytes": int(io["read_bytes"]),
                              "max_rss_mb": max(u.ru_maxrss for u in usage) / 1024}) + "\n")
atexit.register(report)
from dsim.cli.app import main
sys.argv = ["dsim", *sys.argv[1:]]
main()
"""

LISTING = r"""
import json, sys, time
from dsim.data.images import list_images
list_images(sys.argv[1])  # the first listing: hashes what the memo does not know
io = lambda: dict(line.split(": ") for line in open("/proc/self/io").read().split("\n") if line)
before, started = io(), time.perf_counter()
files = list_images(sys.argv[1])
after = io()
print(json.dumps({"files": len(files), "seconds": time.perf_counter() - started,
                  "rchar": int(after["rchar"]) - int(before["rchar"])}))
"""


def generate_small(folder: Path, n: int, seed: int) -> None:
    """``n`` unique 16×16 RGB PNGs (seeded noise), 1000 per sub-folder."""
    if folder.is_dir() and sum(1 for _ in folder.rglob("*.png")) == n:
        return
    from PIL import Image

    shutil.rmtree(folder, ignore_errors=True)
    rng = np.random.default_rng(seed)
    for start in range(0, n, 1000):
        sub = folder / f"{start // 1000:04d}"
        sub.mkdir(parents=True)
        pixels = rng.integers(0, 256, size=(min(1000, n - start), 16, 16, 3), dtype=np.uint8)
        for i, image in enumerate(pixels):
            Image.fromarray(image).save(sub / f"{start + i:07d}.png", compress_level=1)


def generate_photos(folder: Path, n: int, seed: int) -> None:
    """``n`` 480×320 JPEGs: seeded random crops of scikit-image's sample photographs, each unique."""
    if folder.is_dir() and sum(1 for _ in folder.rglob("*.jpg")) == n:
        return
    from PIL import Image
    from skimage import data

    shutil.rmtree(folder, ignore_errors=True)
    sources = [getattr(data, name)() for name in ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field")]
    sources = [np.asarray(Image.fromarray(s).convert("RGB")) for s in sources]
    rng = np.random.default_rng(seed)
    for i in range(n):
        sub = folder / f"{i // 1000:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        image = sources[i % len(sources)]
        h, w = image.shape[:2]
        side_h, side_w = int(rng.integers(h // 3, h)), int(rng.integers(w // 3, w))
        y, x = int(rng.integers(0, h - side_h + 1)), int(rng.integers(0, w - side_w + 1))
        crop = Image.fromarray(image[y:y + side_h, x:x + side_w]).resize((480, 320), Image.BILINEAR)
        crop.save(sub / f"{i:06d}.jpg", quality=int(rng.integers(80, 96)))


def measure(args: list[str], *, pythonpath: str | None, cwd: Path, log: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(MEASURE=str(log), DSIM_STATE_DIR=str(cwd / "state"), PYTHONUNBUFFERED="1")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    log.unlink(missing_ok=True)
    done = subprocess.run([sys.executable, "-c", WRAPPER, *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(log.read_text().splitlines()[-1])


def files_in(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def embed_runs(name: str, dataset: Path, n: int, extractor: str, versions: dict, work: Path) -> list[dict]:
    rows = []
    for version, pythonpath in versions.items():
        cache = work / f"cache-{version}-{name}-{extractor}"
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(work / "state", ignore_errors=True)
        command = ["embed", str(dataset), "--extractor", extractor, "--out", str(work / "out.npz"), "--cache-dir",
                   str(cache)]
        cold = measure(command, pythonpath=pythonpath, cwd=work, log=work / "measure.jsonl")
        warm = measure(command, pythonpath=pythonpath, cwd=work, log=work / "measure.jsonl")
        row = {"dataset": name, "images": n, "extractor": extractor, "version": version,
               "cold_seconds": cold["seconds"], "cold_images_per_s": n / cold["seconds"],
               "cold_max_rss_mb": cold["max_rss_mb"], "warm_seconds": warm["seconds"],
               "warm_rchar": warm["rchar"], "warm_read_bytes": warm["read_bytes"],
               "warm_max_rss_mb": warm["max_rss_mb"], "cache_files": files_in(cache)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        if not (version == "new" and extractor == "pixels"):
            shutil.rmtree(cache, ignore_errors=True)  # keep the new pixels caches for the FID cell
    return rows


def listing_runs(dataset: Path, versions: dict, work: Path) -> list[dict]:
    rows = []
    for version, pythonpath in versions.items():
        shutil.rmtree(work / "state", ignore_errors=True)
        env = {**os.environ, "DSIM_STATE_DIR": str(work / "state")}
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        done = subprocess.run([sys.executable, "-c", LISTING, str(dataset)], env=env, capture_output=True,
                              text=True, check=True, cwd=work)  # not this checkout: "" leads sys.path
        row = {"listing": dataset.name, "version": version, **json.loads(done.stdout)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def grid_runs(a: Path, b: Path, versions: dict, work: Path) -> list[dict]:
    rows = []
    for version, pythonpath in versions.items():
        cache, sweep = work / f"grid-cache-{version}", work / f"grid-{version}"
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(sweep, ignore_errors=True)
        cost = measure(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "extractor=pixels",
                        "metric=fid,kid_poly,cmmd", f"pair.reference={a}", f"pair.candidate={b}", f"cache_dir={cache}",
                        "num_workers=0",  # the code before crashed with decode workers inside joblib workers
                        "progress=false", f"hydra.sweep.dir={sweep}", f"tracking.uri=sqlite:///{work}/grid-{version}.db"],
                       pythonpath=pythonpath, cwd=work, log=work / "measure.jsonl")
        records = [json.loads(p.read_text()) for p in sweep.rglob("result.json")]
        forwarded = sum(sum((r.get("embedded") or r.get("n_embedded") or {}).values()) for r in records)
        row = {"grid": "3 metrics × (10k vs 10k), joblib n_jobs=2", "version": version, "cells": len(records),
               "forward_passes": forwarded, "unique_images": sum(1 for _ in a.rglob("*.png")) + sum(1 for _ in b.rglob("*.png")),
               "seconds": cost["seconds"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
        shutil.rmtree(cache, ignore_errors=True)
    return rows


def fid_cell(reference: Path, candidate: Path, cache: Path, work: Path, pythonpath: str | None) -> dict:
    cost = measure(["extractor=pixels", "metric=fid", f"pair.reference={reference}", f"pair.candidate={candidate}",
                    f"cache_dir={cache}", "progress=false", "force=true", f"hydra.run.dir={work / 'fid-cell'}",
                    f"tracking.uri=sqlite:///{work}/fid.db"], pythonpath=pythonpath, cwd=work, log=work / "measure.jsonl")
    record = json.loads((work / "fid-cell" / "result.json").read_text())
    row = {"fid_cell": f"{record['n_reference']} vs {record['n_candidate']} cached pixels vectors",
           "embedded": record["embedded"], "seconds": cost["seconds"], "max_rss_mb": cost["max_rss_mb"]}
    print(json.dumps(row), flush=True)
    return row


FILL_STORE = r"""
import sys
import numpy as np
from dsim.extractors import build
from dsim.data.images import list_images
from dsim.embeddings.store import VectorStore
folder, cache, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
extractor = build(*sys.argv[4:5] or ["pixels"], **({"weights": sys.argv[5]} if len(sys.argv) > 5 else {}))
files = list_images(folder)
store = VectorStore(cache, extractor.name, extractor.identity, extractor.dim, extractor.describe())
rng = np.random.default_rng(seed)
for start in range(0, len(files), 65536):
    chunk = files[start:start + 65536]
    store.append([f.sha256 for f in chunk], rng.random((len(chunk), extractor.dim), dtype=np.float32))
store.close()
print(len(files))
"""


def fid_store_cell(reference: Path, candidate: Path, work: Path, pythonpath: str | None) -> dict:
    """An FID cell on two listed datasets whose vectors were written straight into the store (random ``pixels``
    vectors for the real files: no forward pass), so the cell's memory is the metric's, at 1M images."""
    cache = work / "cache-fid-store"
    env = {**os.environ, "DSIM_STATE_DIR": str(work / "state"), **({"PYTHONPATH": pythonpath} if pythonpath else {})}
    for seed, folder in enumerate((reference, candidate)):
        subprocess.run([sys.executable, "-c", FILL_STORE, str(folder), str(cache), str(seed)], env=env, check=True, cwd=work,
                       capture_output=True, text=True)
    row = fid_cell(reference, candidate, cache, work, pythonpath)
    row["fid_cell"] += " (written into the store, not forwarded)"
    return row


def startup_runs(dataset: Path, versions: dict, work: Path) -> list[dict]:
    """``import dsim`` and a fully cached FID cell, median of 5 fresh processes, per code version."""
    rows = []
    for version, pythonpath in versions.items():
        env = {**os.environ, "DSIM_STATE_DIR": str(work / "state")}
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        imports = []
        for _ in range(5):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import dsim"], env=env, check=True, cwd=work)
            imports.append(time.perf_counter() - started)
        cache, store = work / f"startup-cache-{version}", f"sqlite:///{work}/startup-{version}.db"
        cell = ["extractor=pixels", "metric=fid", f"pair.reference={dataset}", f"pair.candidate={dataset}",
                f"cache_dir={cache}", "progress=false", f"tracking.uri={store}"]
        measure([*cell, f"hydra.run.dir={work / 'startup-cell'}"], pythonpath=pythonpath, cwd=work,
                log=work / "measure.jsonl")  # fills the cache (and the store)
        cells = []
        for i in range(5):
            extra = ["force=true"] if version == "new" else []  # the code before had no reuse: always computes
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", WRAPPER, *cell, *extra, f"hydra.run.dir={work / f'startup-{i}'}"],
                                  env={**env, "MEASURE": str(work / "measure.jsonl")}, cwd=work, capture_output=True)
            assert done.returncode == 0, done.stderr[-2000:]
            cells.append(time.perf_counter() - started)
        row = {"startup": version, "import_dsim_s": float(np.median(imports)), "cached_cell_s": float(np.median(cells)),
               "cached_cell_all_s": cells}
        rows.append(row)
        print(json.dumps(row), flush=True)
        shutil.rmtree(cache, ignore_errors=True)
    return rows


def torch_fidelity_runs(a: Path, b: Path, work: Path, pythonpath: str | None) -> list[dict]:
    """Warm FID reruns with Inception (the same random-weights file): torch-fidelity's cache vs dsim's store."""
    import torch

    from dsim.extractors import build

    weights = work / "inception-random.pth"
    if not weights.exists():
        model = build("inception", weights="random").build_model(build("inception", weights="random").resolved_weights)
        torch.save(model.state_dict(), weights)
    tf_code = ("import sys, time, torch_fidelity as tf\nt = time.perf_counter()\n"
               "m = tf.calculate_metrics(input1=sys.argv[1], input2=sys.argv[2], fid=True, cuda=False, cache=True, "
               "cache_root=sys.argv[3], input1_cache_name='bench_a', input2_cache_name='bench_a', verbose=False, samples_find_deep=True, "
               "feature_extractor_weights_path=sys.argv[4], batch_size=64)\n"
               "print(time.perf_counter() - t, m['frechet_inception_distance'])")
    rows = []
    for run in ("cold", "warm"):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", tf_code, str(a), str(b), str(work / "tf-cache"), str(weights)],
                              capture_output=True, text=True, check=True)
        rows.append({"torch_fidelity": run, "seconds": time.perf_counter() - started,
                     "fid": float(done.stdout.split()[-1])})
        print(json.dumps(rows[-1]), flush=True)
    rows += dsim_warm_runs(a, b, weights, work, pythonpath)
    return rows


def dsim_warm_runs(a: Path, b: Path, weights: Path, work: Path, pythonpath: str | None) -> list[dict]:
    """dsim's warm FID reruns with Inception on the same folder: its store is filled with the folder's
    vectors directly (written, not forwarded: a cold Inception pass over 10k photos takes ~40 min on 2
    cores and is not what is measured), then the cell runs twice — the first also lists and hashes the
    folder (a cold hash memo), the second is the warm rerun."""
    cache = work / "tf-dsim-cache"
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(work / "state", ignore_errors=True)
    env = {**os.environ, "DSIM_STATE_DIR": str(work / "state-fill"), **({"PYTHONPATH": pythonpath} if pythonpath else {})}
    subprocess.run([sys.executable, "-c", FILL_STORE, str(a), str(cache), "0", "inception", str(weights)], env=env,
                   check=True, capture_output=True, cwd=work)
    rows = []
    for run in ("first (hash memo cold)", "warm"):
        cost = measure(["extractor=inception", f"extractor.weights={weights}", "metric=fid", f"pair.reference={a}",
                        f"pair.candidate={b}", f"cache_dir={cache}", "progress=false", "force=true",
                        f"hydra.run.dir={work / 'tf-cell'}", f"tracking.uri=sqlite:///{work}/tf.db", "batch_size=64"],
                       pythonpath=pythonpath, cwd=work, log=work / "measure.jsonl")
        record = json.loads((work / "tf-cell" / "result.json").read_text())
        rows.append({"dsim": run, "seconds": cost["seconds"], "rchar": cost["rchar"], "max_rss_mb": cost["max_rss_mb"],
                     "embedded": record["embedded"], "store": "filled directly (vectors written, not forwarded)"})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="small-image dataset sizes")
    parser.add_argument("--photos", type=int, default=10000, help="photo-sized JPEGs (0: none)")
    parser.add_argument("--old-src", default=None, help="a checkout of the code before (PYTHONPATH for 'old')")
    parser.add_argument("--new-src", default=None, help="a checkout of this code (default: this tree)")
    parser.add_argument("--workdir", default=None, help="datasets and caches (default: a temp dir, kept)")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: embed,listing,grid,fid,startup,tf")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="dsim-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    versions = {"new": str(Path(args.new_src).resolve()) if args.new_src else None,
                **({"old": str(Path(args.old_src).resolve())} if args.old_src else {})}
    skip = set(filter(None, args.skip.split(",")))
    sizes = [int(s) for s in args.sizes.split(",") if s]
    results: dict[str, list] = {"embed": [], "listing": [], "grid": [], "fid": [], "startup": [],
                                "torch_fidelity": []}
    datasets = {}
    for n in sizes:
        datasets[f"small{n}"] = work / f"small{n}"
        generate_small(datasets[f"small{n}"], n, seed=n)
    if args.photos:
        datasets["photos"] = work / f"photos{args.photos}"
        generate_photos(datasets["photos"], args.photos, seed=1)
    if "embed" not in skip:
        for name, folder in datasets.items():
            n = sum(1 for p in folder.rglob("*") if p.suffix in (".png", ".jpg"))
            for extractor in ("pixels", "efficientnet_lite0") if name == "photos" else ("pixels",):
                results["embed"] += embed_runs(name, folder, n, extractor, versions, work)
    if "listing" not in skip and 100000 in sizes:
        results["listing"] += listing_runs(datasets["small100000"], versions, work)
    if "grid" not in skip and 10000 in sizes:
        generate_small(work / "small10000b", 10000, seed=7)
        results["grid"] += grid_runs(datasets["small10000"], work / "small10000b", versions, work)
    if "fid" not in skip and {100000, 1000000} <= set(sizes):
        if "embed" in skip:  # no 1M cache from the embed runs: the vectors go straight into a store
            results["fid"].append(fid_store_cell(datasets["small1000000"], datasets["small100000"], work,
                                                 versions["new"]))
        else:
            results["fid"].append(fid_cell(datasets["small1000000"], datasets["small100000"],
                                           work / "cache-new-small1000000-pixels", work, versions["new"]))
    if "startup" not in skip and 10000 in sizes:
        results["startup"] += startup_runs(datasets["small10000"], versions, work)
    if "tf" not in skip and args.photos:
        # the folder against itself: each tool embeds it once (cold), then reruns from its cache (warm)
        results["torch_fidelity"] += torch_fidelity_runs(datasets["photos"], datasets["photos"], work, versions["new"])
    if args.out:
        meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                "python": platform.python_version(), "old_src": args.old_src}
        Path(args.out).write_text(json.dumps({"meta": meta, **results}, indent=2) + "\n")
    print(f"workdir: {work}")


if __name__ == "__main__":
    main()
