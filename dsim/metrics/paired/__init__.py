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

from dsim.metrics._checks import integer, optional, positive, positive_numbers, text
from dsim.metrics._registry import register
from dsim.metrics.paired.dreamsim import EXTRACTOR as DREAMSIM_EXTRACTOR
from dsim.metrics.paired.dreamsim import cosine_distance, dreamsim
from dsim.metrics.paired.lpips import NETS, LpipsNetwork, lpips_alex, lpips_squeeze, lpips_values, lpips_vgg, trunk_file
from dsim.metrics.paired.pixel import ms_ssim, ms_ssim_values, psnr, psnr_values

_BATCH = {"batch_size": ("image pairs per forward pass", integer(1))}
_WEIGHTS_NOTE = "default (hub cache) | PATH to the torchvision checkpoint | random (plumbing tests only)"

register(
    "psnr",
    psnr,
    higher_is_better=True,
    kind="paired",
    pair_values=psnr_values,
    doc="Peak signal-to-noise ratio of each image pair in dB on 8-bit RGB",
    notes=("Pairs come from pairing= (default nearest); reports mean, median, best, worst and the entropy bias.",),
    params={
        "data_range": ("the images' value range", positive()),
        "max_db": ("cap: identical images would give infinity; null: no cap", optional(positive())),
    },
)
register(
    "ms_ssim",
    ms_ssim,
    higher_is_better=True,
    kind="paired",
    pair_values=ms_ssim_values,
    ranges={"ms_ssim": (-1.0, 1.0)},
    doc="Multi-scale SSIM of each image pair (torchmetrics; Gaussian window, 5 scales); 1 = identical",
    notes=("Needs images of at least kernel_size * 16 px a side (176 with the defaults): see pairing.size.",),
    params={
        "kernel_size": ("Gaussian window size in px (odd)", integer(3)),
        "sigma": ("Gaussian window sigma", positive()),
        "betas": ("per-scale weights (Wang et al. 2003)", positive_numbers(5)),
        **_BATCH,
    },
)


def _lpips(net: str, fn):
    def values(reference, candidate, **params):
        return lpips_values(reference, candidate, net=net, **params)

    register(
        f"lpips_{net}",
        fn,
        higher_is_better=False,
        kind="paired",
        pair_values=values,
        ranges={f"lpips_{net}": (0.0, None)},
        network=lambda params: LpipsNetwork(net, params.get("weights", "default")),
        doc=f"LPIPS v0.1 (lpips package) with the {net} trunk; 0 = identical",
        notes=(
            f"Trunk: torchvision's ImageNet checkpoint {trunk_file(net)}, read from torch's hub cache "
            "(~/.cache/torch/hub/checkpoints/); never downloaded.",
        ),
        params={"weights": (_WEIGHTS_NOTE, text()), **_BATCH},
    )


for _net, _fn in zip(NETS, (lpips_alex, lpips_vgg, lpips_squeeze)):
    _lpips(_net, _fn)

register(
    "dreamsim",
    dreamsim,
    higher_is_better=False,
    kind="paired",
    input="features",
    embedding=DREAMSIM_EXTRACTOR,
    aligned=False,
    ranges={"dreamsim": (0.0, 2.0)},
    doc="DreamSim distance of each image pair (1 - cosine similarity of DreamSim embeddings)",
    notes=("Uses the dreamsim extractor's cached embeddings (its weights: see conf/extractor/dreamsim.yaml).",),
    cell_params={
        "weights": ("default", "default | PATH | random (plumbing tests only)", text()),
        "batch_size": (8, "images per forward pass of the DreamSim network", integer(1)),
    },
)

__all__ = ["LpipsNetwork", "cosine_distance", "dreamsim", "lpips_alex", "lpips_squeeze", "lpips_vgg", "ms_ssim", "psnr"]
