"""Paired metrics: image pairs in, one number per pair out (registered with ``kind="paired"``).

Each metric has a functional form on in-memory images — ``fn(reference_images, candidate_images,
**params)``, pair ``i`` being ``(reference_images[i], candidate_images[i])``, H×W×3 ``uint8`` — that returns
a :class:`~dsim.metrics.MetricValues` with the mean (``<name>``) and median (``<name>_median``) over pairs and
every pair's value in ``per_image["candidate"][<name>]``.  Each declaration adds what a grid cell needs to
run one on two datasets: the per-pair function (``pair_values``), the network whose weights the numbers
depend on (``network``), or the extractor whose cached embeddings it compares (``embedding``: DreamSim,
whose functional form takes two N×D arrays of DreamSim embeddings).

>>> import numpy as np
>>> from dsim.metrics import compute
>>> a = np.full((2, 8, 8, 3), 100, dtype=np.uint8)
>>> compute("psnr", a, a + 10)["psnr"]       # MSE 100 → 10·log10(255²/100)
28.130803608679106
"""

from __future__ import annotations

from dsim.metrics._registry import discover
from dsim.metrics.paired._dreamsim import cosine_distance, dreamsim
from dsim.metrics.paired._lpips import LpipsNetwork, lpips_alex, lpips_squeeze, lpips_vgg
from dsim.metrics.paired._ms_ssim import ms_ssim
from dsim.metrics.paired._psnr import psnr

discover(__name__, __path__)  # every private module: a paired metric added as _NAME.py needs no edit here

__all__ = ["LpipsNetwork", "cosine_distance", "dreamsim", "lpips_alex", "lpips_squeeze", "lpips_vgg", "ms_ssim", "psnr"]
