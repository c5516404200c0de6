"""Paired metrics: image pairs in, one number per pair out (registered with ``kind="paired"``).

Each metric has a functional form on in-memory images — ``fn(reference_images, candidate_images,
**params)``, pair ``i`` being ``(reference_images[i], candidate_images[i])``, H×W×3 ``uint8`` — that returns
a :class:`~dsim.metrics.MetricValues` with the mean (``<name>``) and median (``<name>_median``) over pairs and
every pair's value in ``per_image["candidate"][<name>]``. :data:`PAIRED` adds what a grid cell needs to run
one on two datasets (``dsim.cell.paired``): the per-pair function, the network whose weights the numbers
depend on, and whether it works on cached embeddings.

>>> import numpy as np
>>> from dsim.metrics import compute
>>> a = np.full((2, 8, 8, 3), 100, dtype=np.uint8)
>>> compute("psnr", a, a + 10)["psnr"]       # MSE 100 → 10·log10(255²/100)
28.130803608679106
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from dsim.metrics._registry import register
from dsim.metrics.paired.dreamsim import EXTRACTOR as DREAMSIM_EXTRACTOR
from dsim.metrics.paired.dreamsim import cosine_distance, dreamsim
from dsim.metrics.paired.lpips import LpipsNetwork, lpips_alex, lpips_squeeze, lpips_values, lpips_vgg
from dsim.metrics.paired.pixel import ms_ssim, ms_ssim_values, psnr, psnr_values


@dataclass(frozen=True)
class PairedMetric:
    """How a grid cell runs a paired metric.

    ``values(reference_images, candidate_images, **params) -> per-pair array``; ``network(params)`` the
    network the numbers depend on (recorded as the cell's extractor; ``None`` for pixel metrics);
    ``embedding``: an extractor name when the metric is a distance between that extractor's embeddings
    (computed from the embedding cache, no image pairs decoded); ``aligned``: the two images of a pair
    must have the same size (the cell applies ``pairing.size``).
    """

    name: str
    values: Callable | None
    higher_is_better: bool
    network: Callable[[dict], object] | None = None
    embedding: str | None = None
    aligned: bool = True


def _lpips_spec(net: str) -> PairedMetric:
    def values(reference, candidate, **params):
        return lpips_values(reference, candidate, net=net, **params)

    return PairedMetric(f"lpips_{net}", values, higher_is_better=False,
                        network=lambda params: LpipsNetwork(net, params.get("weights", "default")))


def _dreamsim_network(params: dict):
    from dsim.metrics.paired.dreamsim import build_extractor

    return build_extractor(params.get("weights", "default"))


PAIRED: dict[str, PairedMetric] = {
    "psnr": PairedMetric("psnr", psnr_values, higher_is_better=True),
    "ms_ssim": PairedMetric("ms_ssim", ms_ssim_values, higher_is_better=True),
    "lpips_alex": _lpips_spec("alex"),
    "lpips_vgg": _lpips_spec("vgg"),
    "lpips_squeeze": _lpips_spec("squeeze"),
    "dreamsim": PairedMetric("dreamsim", None, higher_is_better=False, network=_dreamsim_network,
                             embedding=DREAMSIM_EXTRACTOR, aligned=False),
}

_FUNCTIONS = {"psnr": psnr, "ms_ssim": ms_ssim, "lpips_alex": lpips_alex, "lpips_vgg": lpips_vgg,
              "lpips_squeeze": lpips_squeeze, "dreamsim": dreamsim}
for _name, _spec in PAIRED.items():
    register(_name, _FUNCTIONS[_name], higher_is_better=_spec.higher_is_better, kind="paired")

__all__ = ["PAIRED", "LpipsNetwork", "PairedMetric", "cosine_distance", "dreamsim", "lpips_alex",
           "lpips_squeeze", "lpips_vgg", "ms_ssim", "psnr"]
