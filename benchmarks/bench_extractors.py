"""Embedding throughput per extractor: dsim.embed against a plain loop and the bare model forward.

For each extractor, on the same folder of JPEGs and the same device and batch size, in images/second:

* ``forward``  — the model alone on pre-decoded, preprocessed batches already on the device (the ceiling);
* ``loop``     — a plain single-process loop: decode, preprocess, batch, forward, one step after the other;
* ``embed``    — ``dsim.embed`` with a fresh cache (DataLoader decode workers, batches on the device,
  ``torch.inference_mode``), its model already built (construction is a one-off, reported apart);
* ``embed+build`` — the same call including the model's construction, as a first call pays it.

The ratio ``embed/forward`` is the issue's target (≥ 0.9: decoding fully hidden behind the forward pass).
With ``--device cuda`` (or ``--torch-fidelity``) the fp32 Inception embedding rate is also compared with
torch-fidelity's own pipeline on the same folder (the GPU target: ≥ 2×). Weights: an extractor's default weights when present, else its
random-initialised architecture (same speed; the table says which).

    python benchmarks/bench_extractors.py                       # 64 generated 480×320 JPEGs, CPU
    python benchmarks/bench_extractors.py --folder DIR --n 0    # every image of DIR
    python benchmarks/bench_extractors.py --device cuda --extractors inception --n 2048
"""

from __future__ import annotations

import argparse
import warnings
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import dsim  # noqa: E402
from dsim.extractors import build  # noqa: E402
from dsim.data.images import list_images, load_rgb  # noqa: E402

warnings.filterwarnings("ignore", message="This DataLoader will create")  # torch-fidelity's 4 workers on few CPUs

DEFAULT_EXTRACTORS = ("efficientnet_lite0", "efficientnet_lite2", "mobilenet_v2", "inception", "clip_vit_b32")


def make_jpegs(folder: Path, n: int, width: int = 480, height: int = 320, seed: int = 0) -> Path:
    """``n`` JPEGs of ``width``×``height``: random crops of scikit-image's bundled photos (no download)."""
    from skimage import data

    photos = [getattr(data, name)() for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")]
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        photo = photos[i % len(photos)]
        if photo.ndim == 2:
            photo = np.repeat(photo[..., None], 3, axis=2)
        scale = max(height / photo.shape[0], width / photo.shape[1], 1.0) * float(rng.uniform(1.0, 1.3))
        image = Image.fromarray(photo[..., :3]).resize((round(photo.shape[1] * scale), round(photo.shape[0] * scale)),
                                                       Image.BICUBIC)
        x = int(rng.integers(0, image.width - width + 1))
        y = int(rng.integers(0, image.height - height + 1))
        image.crop((x, y, x + width, y + height)).save(folder / f"{i:05d}.jpg", quality=90)
    return folder


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _choose_weights(name: str, wanted: str) -> str:
    if wanted != "auto":
        return wanted
    location = build(name).default_weights()  # never downloads: present weights, else the random architecture
    return "default" if location.kind == "builtin" or location.locate() is not None else "random"


def _best_rate(n: int, repeat: int, run) -> float:
    """Images/second of the fastest of ``repeat`` runs (other load on the machine only ever slows a run)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return n / best


def bench_one(name: str, files: list[Path], folder: Path, *, device: torch.device, batch_size: int,
              num_workers: int | None, weights: str, repeat: int = 1) -> dict:
    extractor = build(name, weights=weights)
    start = time.perf_counter()
    model = extractor.load(device)
    _sync(device)
    build_s = time.perf_counter() - start
    n = len(files)
    batches = [files[i:i + batch_size] for i in range(0, n, batch_size)]

    # bare forward on pre-decoded, preprocessed batches already on the device
    tensors = [torch.stack([extractor.preprocess(load_rgb(f)) for f in chunk]).to(device) for chunk in batches]
    with torch.inference_mode():
        extractor.features(model, tensors[0])  # warm-up (kernels, allocator)
        _sync(device)

    def forward():
        with torch.inference_mode():
            for batch in tensors:
                extractor.features(model, batch).float().cpu()
            _sync(device)

    forward_rate = _best_rate(n, repeat, forward)
    del tensors

    def loop():  # plain single-process loop: decode + preprocess + forward, sequentially
        with torch.inference_mode():
            for chunk in batches:
                batch = torch.stack([extractor.preprocess(load_rgb(f)) for f in chunk]).to(device)
                extractor.features(model, batch).float().cpu()
            _sync(device)

    loop_rate = _best_rate(n, repeat, loop)

    # dsim.embed, fresh cache, the model already built (construction timed above)
    extractor.load = lambda _device: model  # this instance only: hand embed the built model

    def embed():
        with tempfile.TemporaryDirectory(prefix="dsim-bench-cache-") as cache:
            emb = dsim.embed(folder, extractor, device=str(device), batch_size=batch_size,
                             num_workers=num_workers, cache_dir=cache, progress=False)
            _sync(device)
        assert emb.n_computed == n, (emb.n_computed, n)

    embed_rate = _best_rate(n, repeat, embed)
    return {"extractor": name, "weights": weights, "n": n, "dim": extractor.dim, "build_s": build_s,
            "forward": forward_rate, "loop": loop_rate, "embed": embed_rate,
            "embed+build": n / (n / embed_rate + build_s)}


def bench_torch_fidelity(folder: Path, n: int, *, batch_size: int, weights_path: Path, device: torch.device,
                         repeat: int = 1) -> float:
    """torch-fidelity's own pipeline (its dataset, DataLoader and Inception) on the folder: images/second.

    Its extractor is built once before timing, as dsim's is; the timing covers decoding and the forward pass.
    """
    from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset, \
        prepare_input_from_descriptor

    cuda = device.type == "cuda"
    extractor = create_feature_extractor("inception-v3-compat", ["2048"], cuda=cuda,
                                         feature_extractor_weights_path=str(weights_path), verbose=False)
    dataset = prepare_input_from_descriptor({"input": str(folder)}, samples_find_deep=True,
                                            samples_find_ext="jpg,jpeg,png", samples_ext_lossy="jpg,jpeg",
                                            verbose=False)
    assert len(dataset) == n, (len(dataset), n)

    def run():
        get_featuresdict_from_dataset(dataset, extractor, batch_size, cuda=cuda, save_cpu_ram=False, verbose=False)
        _sync(device)

    return _best_rate(n, repeat, run)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, help="images to embed (default: generate JPEGs in a temp folder)")
    parser.add_argument("--n", type=int, default=64, help="images to generate / use (0: all of --folder)")
    parser.add_argument("--extractors", default=",".join(DEFAULT_EXTRACTORS))
    parser.add_argument("--weights", default="auto", help="auto (default if present, else random) | default | random")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-workers", type=int, default=None, help="dsim.embed decode workers (default: dsim's)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest counts")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--torch-fidelity", action=argparse.BooleanOptionalAction, default=None,
                        help="compare inception with torch-fidelity's pipeline (default: on with --device cuda)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    with tempfile.TemporaryDirectory(prefix="dsim-bench-images-") as tmp:
        folder = args.folder or make_jpegs(Path(tmp) / "images", args.n)
        files = [ref.path for ref in list_images(folder)]
        if args.n and len(files) > args.n:
            raise SystemExit(f"--folder has {len(files)} images; pass --n 0 to use them all")
        print(f"{len(files)} images from {folder}, device {device}, batch {args.batch_size}, "
              f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}", flush=True)
        results = []
        for name in args.extractors.split(","):
            results.append(bench_one(name, files, folder, device=device, batch_size=args.batch_size,
                                     num_workers=args.num_workers, weights=_choose_weights(name, args.weights),
                                     repeat=args.repeat))
            r = results[-1]
            print(f"  {name}: forward {r['forward']:.1f}/s, loop {r['loop']:.1f}/s, embed {r['embed']:.1f}/s",
                  flush=True)
        peer = args.torch_fidelity if args.torch_fidelity is not None else device.type == "cuda"
        if peer and "inception" in args.extractors.split(","):
            with tempfile.TemporaryDirectory() as wdir:
                weights_path = Path(wdir) / "inception.pth"
                torch.save(build("inception", weights="random").load(torch.device("cpu")).state_dict(), weights_path)
                tf_rate = bench_torch_fidelity(folder, len(files), batch_size=args.batch_size,
                                               weights_path=weights_path, device=device, repeat=args.repeat)
            ours = next(r for r in results if r["extractor"] == "inception")
            ours["torch_fidelity"] = tf_rate

    print()
    header = (f"{'extractor':20s} {'weights':8s} {'build s':>8s} {'forward/s':>10s} {'loop/s':>8s} "
              f"{'embed/s':>8s} {'embed+build/s':>14s} {'embed/forward':>14s} {'embed/loop':>11s}")
    print(header)
    for r in results:
        print(f"{r['extractor']:20s} {r['weights']:8s} {r['build_s']:8.1f} {r['forward']:10.1f} {r['loop']:8.1f} "
              f"{r['embed']:8.1f} {r['embed+build']:14.1f} {r['embed'] / r['forward']:14.2f} "
              f"{r['embed'] / r['loop']:11.2f}")
        if "torch_fidelity" in r:
            print(f"{'':20s} torch-fidelity {r['torch_fidelity']:.1f}/s; dsim/torch-fidelity "
                  f"{r['embed'] / r['torch_fidelity']:.2f}x (target >= 2)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
