"""The extractor contract: images in, one feature vector each out, with a stable identity.

An extractor declares its preprocessing, the layers it can emit (with their dimensions) and where its
default weights come from; it resolves its weights to a file with a checksum, and builds its network
only when a forward pass is really needed, so a fully cached run never loads a model. Its
:meth:`Extractor.identity` is the embedding cache key: it changes when the weights, the layer or the
preprocessing change, and never otherwise.

The class is the single source of truth about an extractor: its config file in ``conf/extractor/`` and
its row in docs/reference/extractors.md are rendered from it (``python -m dsim.extractors.catalog --write``) and a test
keeps them equal.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, fields
from functools import cached_property

import numpy as np
import torch

from dsim import weights as weights_lib
from dsim.errors import DsimError
from dsim.weights import WeightsSource

_INTERPOLATIONS = ("nearest", "bilinear", "bicubic")  # torchvision's InterpolationMode names, lower case
SCALES = ("unit", "uint8")


@dataclass(frozen=True)
class Preprocess:
    """How an 8-bit RGB image becomes the network's input tensor.

    ``size=None`` keeps the image as it is (native size: the network resizes it itself). Otherwise
    ``resize`` is the length of the shorter side after resizing (``None``: resize straight to
    ``size`` × ``size``, ignoring the aspect ratio); ``crop="center"`` then takes the central
    ``size`` × ``size`` square. With ``scale="unit"`` pixel values are scaled to [0, 1] and normalised
    with ``mean`` and ``std`` (``float32``); with ``scale="uint8"`` they stay 0..255 (``uint8``) for
    networks that scale their input themselves.

    Fields added after the first release (``scale``) are left out of :meth:`describe` while at their
    default, so adding a field never changes an existing extractor's identity.
    """

    size: int | None
    resize: int | None = None
    crop: str = "center"
    interpolation: str = "bicubic"
    antialias: bool = True
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    scale: str = "unit"

    _ADDED_FIELDS = ("scale",)

    def __post_init__(self):
        if self.scale not in SCALES:
            raise ValueError(f"Preprocess.scale must be one of {SCALES}, got {self.scale!r}")
        if self.interpolation not in _INTERPOLATIONS and self.size is not None:
            raise ValueError(f"Preprocess.interpolation must be one of {sorted(_INTERPOLATIONS)}")
        if self.crop != "center":
            raise ValueError(f"Preprocess.crop must be 'center', got {self.crop!r}")
        if self.scale == "uint8" and (self.mean != (0.0, 0.0, 0.0) or self.std != (1.0, 1.0, 1.0)):
            raise ValueError("Preprocess: scale='uint8' delivers raw 0..255 values; mean/std do not apply")
        if self.size is None and self.resize is not None:
            raise ValueError("Preprocess: resize needs a size")

    def __call__(self, rgb: np.ndarray) -> torch.Tensor:
        """H×W×3 ``uint8`` array → 3×size×size tensor (``float32``, or ``uint8`` with ``scale="uint8"``)."""
        from torchvision.transforms.v2 import InterpolationMode  # imported where images are decoded
        from torchvision.transforms.v2 import functional as TF

        image = torch.from_numpy(np.require(rgb, requirements=["C", "W"])).permute(2, 0, 1)
        if self.size is not None:
            mode = InterpolationMode(self.interpolation)
            if self.resize is None:
                image = TF.resize(image, [self.size, self.size], interpolation=mode, antialias=self.antialias)
            else:
                image = TF.resize(image, self.resize, interpolation=mode, antialias=self.antialias)
                image = TF.center_crop(image, [self.size, self.size])
        if self.scale == "uint8":
            return image.contiguous()
        image = image.to(torch.float32).div_(255.0)
        return TF.normalize(image, list(self.mean), list(self.std))

    def describe(self) -> dict:
        """The fields that determine the tensor (part of the extractor identity)."""
        described = asdict(self)
        defaults = {f.name: f.default for f in fields(self)}
        for name in self._ADDED_FIELDS:
            if described[name] == defaults[name]:
                del described[name]
        return described

    def explain(self) -> str:
        """One human line, e.g. ``bicubic resize of the shorter side to 256 (antialiased), centre crop 224, ...``."""
        if self.size is None:
            steps = ["native size (no resize)"]
        elif self.resize is None:
            steps = [
                f"{self.interpolation} resize to {self.size}×{self.size}" + (" (antialiased)" if self.antialias else "")
            ]
        else:
            steps = [
                f"{self.interpolation} resize of the shorter side to {self.resize}"
                + (" (antialiased)" if self.antialias else ""),
                f"centre crop {self.size}",
            ]
        if self.scale == "uint8":
            steps.append("uint8 0..255")
        elif self.mean == (0.0, 0.0, 0.0) and self.std == (1.0, 1.0, 1.0):
            steps.append("values in [0, 1]")
        else:
            steps.append(f"[0, 1] normalised with mean {_fmt(self.mean)}, std {_fmt(self.std)}")
        return ", ".join(steps)


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


class Extractor(ABC):
    """Base class of every feature extractor; subclasses register themselves in ``dsim.extractors``.

    Subclasses set ``name``, ``layers`` (layer name → output dimension; the first is the default) and
    the documentation attributes, and implement :attr:`preprocess`, :meth:`default_weights` and
    :meth:`build_model`; :meth:`features` defaults to ``model(batch)``.
    """

    name: str = ""
    #: layer name → output dimension; the first entry is the default layer
    layers: dict[str, int] = {}
    #: Bump when the implementation changes its numbers for the same weights and preprocessing.
    implementation_version: int = 1
    #: one line: what the network is and which library provides it
    summary: str = ""
    #: licence of the weights (and code)
    licence: str = ""
    #: the network's input size as shown in the docs (default: the preprocessing size)
    input_note: str = ""
    #: per-layer note for the docs, e.g. ``{"logits": "1008 ImageNet logits for the Inception Score"}``
    layer_notes: dict[str, str] = {}
    #: the output dimensions as shown in the docs, when they depend on an option (default: from ``layers``)
    dims_note: str = ""
    #: the preprocessing as shown in the docs, when it is read from the model's files (default: explained)
    preprocess_note: str = ""
    #: constructor options beyond ``weights`` and ``layer``: name → (default, one-line meaning)
    options: dict[str, tuple] = {}

    def __init__(self, weights: str = "default", layer: str | None = None):
        self.weights = str(weights)
        self.layer = self.default_layer() if layer is None else str(layer)
        if self.layer not in self.layers:
            hint = ""
            if self.layer == "logits":
                from dsim.extractors.registry import with_layer

                hint = f"; ImageNet class logits come from: {', '.join(with_layer('logits'))}"
            raise DsimError(
                f"extractor {self.name!r} has no layer {self.layer!r} (choose from: {', '.join(self.layers)}{hint})"
            )

    @classmethod
    def default_layer(cls) -> str:
        return next(iter(cls.layers))

    @property
    def dim(self) -> int:
        """Output dimension of the selected layer."""
        return self.layers[self.layer]

    @property
    @abstractmethod
    def preprocess(self) -> Preprocess:
        """The preprocessing that turns an RGB image into this network's input."""

    def default_weights(self) -> weights_lib.Location:
        """Where ``weights="default"`` comes from (a package file, a hub checkpoint, nothing)."""
        return weights_lib.Builtin()

    def local_weights(self, path: str) -> WeightsSource:
        """A user-given ``weights=PATH`` (a checkpoint file unless a subclass takes a folder)."""
        return weights_lib.from_file(path, extractor=self.name)

    def weights_source(self) -> WeightsSource:
        """Where the weights come from (a file with a checksum, built-in, or random)."""
        return weights_lib.resolve(
            self.weights, extractor=self.name, default=self.default_weights(), local=self.local_weights
        )

    @abstractmethod
    def build_model(self, weights: WeightsSource) -> torch.nn.Module:
        """Construct the network with ``weights`` loaded (called only when a forward pass is needed).

        ``weights.kind == "random"`` builds the same architecture with seeded random weights.
        """

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
            "preprocess": self.preprocess.describe(),
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
        return model.eval().requires_grad_(False).to(device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, weights={self.weights!r}, layer={self.layer!r})"
