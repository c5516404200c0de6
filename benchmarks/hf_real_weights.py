"""Real ImageNet weights through ``hf/<repo id>`` on two photo folders, against dsim's own ``mobilenet_v2``.

torchvision's MobileNetV2 (whose weights install offline) is written as a transformers ``MobileNetV2Model``
folder; both paths embed both folders and the script prints each path's FID, the largest per-image
feature gap and the smallest per-image cosine. The networks are the same to the last bit; what differs is
the image processor (transformers' centre crop rounds its offset down, torchvision's rounds it).

    python benchmarks/hf_real_weights.py ../shared/datasets/bsds500_val ../shared/datasets/mars_mastcam
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    from hf_hub_cache import mobilenet_v2_as_transformers

    import dsim
    from dsim.extractors import build
    from dsim.metrics import compute

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference")
    parser.add_argument("candidate")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dsim-hf-real-") as work:
        folder = Path(work) / "mobilenet_v2"
        mobilenet_v2_as_transformers(folder)
        paths = {"mobilenet_v2": "mobilenet_v2", "hf/…/mobilenet_v2": build("hf/dsim-check/mobilenet_v2", weights=str(folder))}
        features = {}
        for label, extractor in paths.items():
            sides = [dsim.embed(p, extractor, cache_dir=Path(work) / "cache", progress=False)
                     for p in (args.reference, args.candidate)]
            features[label] = sides
            print(f"{label:20s} FID {compute('fid', sides[0].features, sides[1].features)['fid']:.2f} "
                  f"({len(sides[0])} vs {len(sides[1])} images)")
        for side in (0, 1):
            a, b = (features[label][side].features for label in paths)
            cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
            print(f"side {side}: max |feature gap| {np.abs(a - b).max():.3f}, min cosine {cosine.min():.4f}")


if __name__ == "__main__":
    main()
