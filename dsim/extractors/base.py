"""The extractor contract: images in, one feature vector each out, with a stable identity.

An extractor declares its preprocessing and output dimension, resolves its weights to a file with a
checksum, and builds its network only when a forward pass is really needed, so a fully cached run never
loads a model. Its :meth:`Extractor.identity` is the embedding cache key: it changes when the weights,
the layer or the preprocessing change, and never otherwise.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF
from torchvision.transforms.v2 import InterpolationMode

from dsim.extractors.weights import WeightsSource

_INTERPOLATIONS = {
    "nearest": InterpolationMode.NEAREST,
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
}


@dataclass(frozen=True)
class Preprocess:
    """How an 8-bit RGB image becomes the network's input tensor.

    ``resize`` is the length of the shorter side after resizing (``None``: resize straight to
    ``size`` × ``size``); ``crop="center"`` then takes the central ``size`` × ``size`` square.
    Pixel values are scaled to [0, 1] and normalised with ``mean`` and ``std``.
    """

    size: int
    resize: int | None = None
    crop: str = "center"
    interpolation: str = "bicubic"
    antialias: bool = True
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def __call__(self, rgb: np.ndarray) -> torch.Tensor:
        """H×W×3 ``uint8`` array → 3×size×size ``float32`` tensor."""
        image = torch.from_numpy(np.require(rgb, requirements=["C", "W"])).permute(2, 0, 1)
        mode = _INTERPOLATIONS[self.interpolation]
        if self.resize is None:
            image = TF.resize(image, [self.size, self.size], interpolation=mode, antialias=self.antialias)
        else:
            image = TF.resize(image, self.resize, interpolation=mode, antialias=self.antialias)
            image = TF.center_crop(image, [self.size, self.size])
        image = image.to(torch.float32).div_(255.0)
        return TF.normalize(image, list(self.mean), list(self.std))


class Extractor(ABC):
    """Base class of every feature extractor; subclasses register themselves in ``dsim.extractors``.

    Subclasses set ``name`` and ``dim``, and implement :meth:`weights_source`, :attr:`preprocess` and
    :meth:`build_model`; ``features(model, batch)`` defaults to ``model(batch)``.
    """

    name: str = ""
    dim: int = 0
    layer: str = "features"
    #: Bump when the implementation changes its numbers for the same weights and preprocessing.
    implementation_version: int = 1

    def __init__(self, weights: str = "default"):
        self.weights = str(weights)

    @property
    @abstractmethod
    def preprocess(self) -> Preprocess:
        """The preprocessing that turns an RGB image into this network's input."""

    @abstractmethod
    def weights_source(self) -> WeightsSource:
        """Where the weights come from (a file with a checksum, built-in, or random)."""

    @abstractmethod
    def build_model(self, weights: WeightsSource) -> torch.nn.Module:
        """Construct the network with ``weights`` loaded (called only when a forward pass is needed)."""

    def features(self, model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
        """N×3×H×W preprocessed batch → N×dim features."""
        return model(batch)

    @cached_property
    def resolved_weights(self) -> WeightsSource:
        return self.weights_source()

    @property
    def is_random(self) -> bool:
        return self.resolved_weights.kind == "random"

    def describe(self) -> dict:
        """Everything that determines this extractor's numbers (the identity's preimage)."""
        return {
            "name": self.name,
            "layer": self.layer,
            "dim": self.dim,
            "weights": self.resolved_weights.checksum,
            "preprocess": asdict(self.preprocess),
            "implementation_version": self.implementation_version,
        }

    @cached_property
    def identity(self) -> str:
        """Hex digest over :meth:`describe`: the embedding cache key of this extractor."""
        canonical = json.dumps(self.describe(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def load(self, device: torch.device) -> torch.nn.Module:
        """The network in eval mode on ``device``, ready for :meth:`features`."""
        model = self.build_model(self.resolved_weights)
        return model.eval().to(device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, weights={self.weights!r})"
