"""LPIPS (Zhang et al. 2018) through the ``lpips`` package, with its AlexNet, VGG-16 or SqueezeNet trunk.

The calibrated linear layers ship inside the ``lpips`` package. The trunk is torchvision's ImageNet
model, which ``lpips`` normally fetches into torch's hub cache (``$TORCH_HOME/hub/checkpoints``,
``~/.cache/torch/hub/checkpoints`` by default). dsim reads it from exactly there (``weights: default``)
or from a file you name (``weights: PATH``, the torchvision checkpoint), and never downloads: a missing file
is a one-line error naming the file and where to put it. ``weights: random`` builds the same network with a
seeded random trunk (plumbing tests only; recorded as ``random_weights``).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from dsim import weights as weights_lib
from dsim.errors import DsimError
from dsim.metrics._checks import integer, text
from dsim.metrics._registry import declare
from dsim.metrics.paired._common import as_image_pairs, check_batch_size, shape_batches, summarize, to_tensor
from dsim.util.fileio import file_sha256

NETS = ("alex", "vgg", "squeeze")
#: trunk → (torchvision weights enum name, architecture shown in messages)
_TRUNKS = {
    "alex": ("AlexNet_Weights", "AlexNet"),
    "vgg": ("VGG16_Weights", "VGG-16"),
    "squeeze": ("SqueezeNet1_1_Weights", "SqueezeNet 1.1"),
}
#: trunk → the file name of torchvision's ImageNet checkpoint (torch's hub cache)
_TRUNK_FILES = {
    "alex": "alexnet-owt-7be5be79.pth",
    "vgg": "vgg16-397923af.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}
LPIPS_VERSION = "0.1"

_loaded: dict[tuple[str, str], torch.nn.Module] = {}


def trunk_url(net: str) -> str:
    import torchvision.models as tvm

    return getattr(tvm, _TRUNKS[net][0]).IMAGENET1K_V1.url


def trunk_file(net: str) -> str:
    """The file name of the trunk's torchvision checkpoint (the last part of :func:`trunk_url`)."""
    return _TRUNK_FILES[net]


def default_trunk_path(net: str) -> Path:
    """Where torchvision (and so ``lpips``) caches the trunk's ImageNet weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / trunk_file(net)


@dataclass
class LpipsNetwork:
    """The LPIPS network of one trunk, with the extractor-like identity a run record needs.

    >>> net = LpipsNetwork("alex", weights="random")
    >>> net.name, net.is_random
    ('lpips_alex', True)
    """

    net: str = "alex"
    weights: str = "default"
    option: str = "metric.params.weights"  # the config key that sets ``weights`` (named in messages)

    def __post_init__(self):
        if self.net not in NETS:
            raise DsimError(f"lpips: unknown net {self.net!r} (choose from: {', '.join(NETS)})")
        self.weights = str(self.weights)

    @property
    def name(self) -> str:
        return f"lpips_{self.net}"

    def _default_trunk(self) -> weights_lib.WeightsSource:
        path = default_trunk_path(self.net)
        if not path.is_file():
            raise DsimError(
                f"LPIPS ({self.net}) needs torchvision's ImageNet {_TRUNKS[self.net][1]} weights: {path} not found "
                f"(download {trunk_url(self.net)} into {path.parent}, or set {self.option}=PATH to that file)"
            )
        return weights_lib.from_file(path, extractor=self.name, expected_prefix=weights_lib.hub_hash_prefix(path.name))

    @cached_property
    def resolved_weights(self) -> weights_lib.WeightsSource:
        return weights_lib.resolve(self.weights, extractor=self.name, default=self._default_trunk)

    @property
    def is_random(self) -> bool:
        return self.resolved_weights.kind == "random"

    @cached_property
    def linear_layers(self) -> Path:
        import lpips

        path = Path(lpips.__file__).parent / "weights" / f"v{LPIPS_VERSION}" / f"{self.net}.pth"
        if not path.is_file():
            raise DsimError(f"lpips: the package's calibrated layers {path} are missing; reinstall `pip install lpips`")
        return path

    def describe(self) -> dict:
        return {
            "name": self.name,
            "lpips_version": LPIPS_VERSION,
            "trunk": self.resolved_weights.checksum,
            "linear": f"sha256:{file_sha256(self.linear_layers)}",
        }

    @cached_property
    def identity(self) -> str:
        canonical = json.dumps(self.describe(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def load(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        """The ``lpips.LPIPS`` module in eval mode on ``device`` (built once per process and device)."""
        key = (self.identity, str(device))
        if key not in _loaded:
            _loaded[key] = self._build().eval().to(device)
        return _loaded[key]

    def _build(self) -> torch.nn.Module:
        import lpips

        source = self.resolved_weights
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torchvision's "pretrained is deprecated"
            torch.manual_seed(weights_lib.RANDOM_SEED)
            model = lpips.LPIPS(
                net=self.net, version=LPIPS_VERSION, pnet_rand=True, model_path=str(self.linear_layers), verbose=False
            )
        if source.kind == "file":
            load_trunk(model.net, source.file, name=self.name)
        for p in model.parameters():
            p.requires_grad_(False)
        return model


def load_trunk(trunk: torch.nn.Module, path: Path, *, name: str) -> None:
    """Load a torchvision checkpoint (``features.<i>.*`` keys) into lpips' sliced trunk (``slice<k>.<i>.*``)."""
    state = weights_lib.read_state_dict(path, extractor=name)  # tensors only: never code, never torch's advice
    mapped, missing = {}, []
    for key in trunk.state_dict():
        source_key = "features." + key.split(".", 1)[1]  # slice2.3.weight -> features.3.weight
        if source_key in state:
            mapped[key] = state[source_key]
        else:
            missing.append(source_key)
    if missing:
        raise DsimError(
            f"{name}: {path} is not a torchvision checkpoint of this trunk "
            f"(missing {', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})"
        )
    try:
        trunk.load_state_dict(mapped, strict=True)
    except RuntimeError as error:
        raise DsimError(f"{name}: {path} does not fit the trunk: {str(error).splitlines()[0]}") from error


def lpips_values(
    reference, candidate, *, net: str = "alex", weights: str = "default", device: str = "cpu", batch_size: int = 8
) -> np.ndarray:
    """Per-pair LPIPS distance (images scaled to [-1, 1], spatially averaged, as ``lpips.LPIPS``)."""
    refs, cands = as_image_pairs(reference, candidate, metric=f"lpips_{net}")
    batch_size = check_batch_size(batch_size, f"lpips_{net}")
    model = LpipsNetwork(net, weights).load(device)
    out = np.empty(len(refs))
    with torch.inference_mode():
        for indices in shape_batches(refs, batch_size):
            x = to_tensor(refs, indices, device)
            y = to_tensor(cands, indices, device)
            out[indices] = model(x, y, normalize=True).reshape(-1).double().cpu().numpy()
    return out


def _lpips(net: str, reference, candidate, weights, device, batch_size):
    return summarize(
        f"lpips_{net}",
        lpips_values(reference, candidate, net=net, weights=weights, device=device, batch_size=batch_size),
    )


_WEIGHTS_NOTE = "default (hub cache) | PATH to the torchvision checkpoint | random (plumbing tests only)"


def _declaration(net: str) -> dict:
    """The declaration of metric ``lpips_<net>``."""

    def values(reference, candidate, **params):
        return lpips_values(reference, candidate, net=net, **params)

    return dict(
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
        params={"weights": (_WEIGHTS_NOTE, text()), "batch_size": ("image pairs per forward pass", integer(1))},
    )


@declare("lpips_alex", **_declaration("alex"))
def lpips_alex(reference, candidate, *, weights: str = "default", device: str = "cpu", batch_size: int = 8):
    """LPIPS with the AlexNet trunk (the lpips package's default); lower is better, 0 for identical images.

    ``weights``: ``default`` (torchvision's ImageNet AlexNet from torch's hub cache), a path to that
    checkpoint, or ``random`` (seeded random trunk, plumbing tests only).
    """
    return _lpips("alex", reference, candidate, weights, device, batch_size)


@declare("lpips_vgg", **_declaration("vgg"))
def lpips_vgg(reference, candidate, *, weights: str = "default", device: str = "cpu", batch_size: int = 8):
    """LPIPS with the VGG-16 trunk; lower is better, 0 for identical images."""
    return _lpips("vgg", reference, candidate, weights, device, batch_size)


@declare("lpips_squeeze", **_declaration("squeeze"))
def lpips_squeeze(reference, candidate, *, weights: str = "default", device: str = "cpu", batch_size: int = 8):
    """LPIPS with the SqueezeNet 1.1 trunk; lower is better, 0 for identical images."""
    return _lpips("squeeze", reference, candidate, weights, device, batch_size)
