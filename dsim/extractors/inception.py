"""The TF-compatible Inception-v3 that FID, KID and IS are defined on, through torch-fidelity.

torch-fidelity's ``FeatureExtractorInceptionV3`` is the network (its bit-level parity with the reference
TensorFlow graph is that library's tested promise); dsim does not re-derive it. It takes ``uint8``
images at any size, resizes them to 299×299 with TensorFlow-1 compatible bilinear interpolation and
scales them to [-1, 1] itself, so dsim's preprocessing hands it the decoded image unchanged (``size:
null``, the default: torch-fidelity parity; all images of a dataset must then share one size, as in
torch-fidelity). ``size: 299`` (or any size) first resizes every image with antialiased bicubic
interpolation, for folders of mixed sizes — a different identity, and different numbers.

Layers: ``pool`` (2048-d pool3 features, for FID/KID/PRDC) and ``logits`` (1008 logits without the bias,
torch-fidelity's ``logits_unbiased``: what the Inception Score is defined on).

Weights: torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth``, downloaded by ``torch.hub`` into
``$TORCH_HOME/hub/checkpoints/`` and checked against its pinned SHA-256; ``extractor.weights=PATH`` loads a
local copy of that file. Either way the file is read as tensors only (never unpickled as code).
"""

from __future__ import annotations

import io

import torch

from dsim import weights as weights_lib
from dsim.extractors.base import Extractor, Preprocess
from dsim.extractors.registry import register

#: SHA-256 of torch-fidelity's weights-inception-2015-12-05-6726825d.pth (its name carries the first 8 hex)
WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
# dsim layer name -> torch-fidelity feature name
_FEATURES = {"pool": "2048", "logits": "logits_unbiased"}


def _inception_class():
    """torch-fidelity's Inception whose constructor leaves the weights to dsim.

    Its constructor always loads a state dict itself, with ``torch.load(weights_only=False)`` — which
    would run any code a planted pickle carries. dsim hands it an empty dict of its own making (ignored
    here) and loads the real weights through :func:`dsim.weights.load_state_dict` (tensors
    only) afterwards. Nothing else of the network changes.
    """
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class SafelyLoadedInceptionV3(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, *args, **kwargs):
            if len(state_dict) == 0:
                return None
            return super().load_state_dict(state_dict, *args, **kwargs)

    return SafelyLoadedInceptionV3


def _empty_state_dict() -> io.BytesIO:
    buffer = io.BytesIO()
    torch.save({}, buffer)
    buffer.seek(0)
    return buffer


@register
class InceptionV3(Extractor):
    name = "inception"
    summary = "TF-compatible Inception-v3 of FID/KID/IS (torch-fidelity FeatureExtractorInceptionV3)"
    licence = "Apache-2.0 (TensorFlow weights; torch-fidelity code)"
    input_note = "299 (resized inside the network)"
    layers = {"pool": 2048, "logits": 1008}
    layer_notes = {"logits": "without the bias: torch-fidelity's logits_unbiased, which IS is defined on"}
    options = {
        "size": (
            None,
            "null: native size, torch-fidelity parity (one image size per dataset) | "
            "N: bicubic resize to N×N first (mixed sizes)",
        )
    }

    def __init__(self, weights: str = "default", layer: str | None = None, size: int | None = None):
        super().__init__(weights, layer)
        self.size = None if size is None else int(size)
        if self.size is not None and self.size < 1:
            raise ValueError(f"inception: size must be positive or null, got {size}")

    @property
    def preprocess(self) -> Preprocess:
        if self.size is None:
            return Preprocess(size=None, scale="uint8", interpolation="none")
        return Preprocess(size=self.size, resize=None, interpolation="bicubic", antialias=True, scale="uint8")

    def default_weights(self) -> weights_lib.Location:
        from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

        return weights_lib.TorchHubFile(URL_INCEPTION_V3, sha256=WEIGHTS_SHA256)

    def build_model(self, weights: weights_lib.WeightsSource) -> torch.nn.Module:
        with weights_lib.seeded():
            model = _inception_class()(
                "inception-v3-compat", [_FEATURES[self.layer]], feature_extractor_weights_path=_empty_state_dict()
            )
        if weights.kind == "file":
            weights_lib.load_into(model, weights.file, extractor=self.name)
        return model

    def features(self, model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
        return model(batch)[0]
