"""Raw pixels, resized: the baseline every similarity study needs.

Each image is resized (area-averaged) to ``size`` × ``size`` and flattened to ``3·size²`` values in
[0, 1]. No network, no weights.
"""

from __future__ import annotations

import torch

from dsim import weights as weights_lib
from dsim.extractors.base import Extractor, Preprocess
from dsim.extractors.registry import register


@register
class Pixels(Extractor):
    """Resized raw RGB pixels in [0, 1], flattened."""

    name = "pixels"
    summary = "raw RGB pixels, resized and flattened (baseline)"
    licence = "-"
    layers = {"pixels": 0}  # the dimension depends on ``size``: see ``dim``
    dims_note = "pixels → 3·size² (768 at size 16)"
    options = {"size": (16, "side of the resized image: 3·size² features")}

    def __init__(self, weights: str = "default", layer: str | None = None, size: int = 16):
        super().__init__(weights, layer)
        self.size = int(size)
        if self.size < 1:
            raise ValueError(f"pixels: size must be positive, got {size}")

    @property
    def dim(self) -> int:
        return 3 * self.size * self.size

    @property
    def preprocess(self) -> Preprocess:
        return Preprocess(size=self.size, resize=None, interpolation="bilinear", antialias=True)

    def build_model(self, weights: weights_lib.WeightsSource) -> torch.nn.Module:
        return torch.nn.Flatten()
