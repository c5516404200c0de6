"""A generator as configured (``generator=``): what it is, how it is built, and its identity.

``GeneratorSpec.from_config(config.generator.node)`` reads the group; :meth:`GeneratorSpec.load` builds the
model once per process and device (``_target_`` with ``params``, then ``checkpoint``: a state dict read
without unpickling code); :class:`Generator` wraps it so every caller sees one protocol:

- ``images(z)`` → N×3×H×W float32 in [0, 1] (uint8 outputs are divided by 255, float outputs mapped from
  ``output_range`` and clamped, one channel repeated to three; N×H×W×C outputs are transposed);
- ``mapping(z)`` → w and ``synthesis(w)`` → images, when the model has both (w-space PPL).

The identity is a hash of the target, its parameters, the checkpoint's SHA-256, ``z_dim``, the output
range and the model's own ``version`` attribute (the toy's): the samples folder's name and the run record
carry it, as an extractor's identity is carried. A user model's code is not hashed — bump a ``version``
attribute on it (or change ``params``) when its code changes.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from dsim.errors import DsimError

#: bump when the protocol (latents, output conversion) changes, so old sample folders are not reused
PROTOCOL = 1

_loaded: dict[tuple[str, str], Generator] = {}


@dataclass(frozen=True)
class GeneratorSpec:
    """The ``generator`` config group as values (``name: none`` means no generator)."""

    name: str = "none"
    target: str | None = None
    params: dict = field(default_factory=dict)
    checkpoint: str | None = None
    z_dim: int | None = None
    output_range: tuple[float, float] = (0.0, 1.0)
    n_samples: int = 1000
    seed: int = 0
    batch_size: int = 64

    @classmethod
    def from_config(cls, node: dict | None) -> GeneratorSpec:
        node = dict(node or {})
        name = node.get("name", "none")
        if not isinstance(name, str) or not name.strip() or "/" in name:
            raise DsimError(f"generator.name must be a short name (it names the samples folder), got {name!r}")
        if name == "none":
            return cls()
        target = node.get("_target_")
        if not target:
            raise DsimError(
                f"generator={name}: generator._target_ is missing (a dotted path to the model's class "
                "or to a function that returns it)"
            )
        from dsim.util.plugins import locate

        locate(str(target))  # importable now, before any work
        low_high = node.get("output_range", [0, 1])
        if not (isinstance(low_high, (list, tuple)) and len(low_high) == 2 and float(low_high[0]) < float(low_high[1])):
            raise DsimError(f"generator.output_range must be [low, high] with low < high, got {low_high!r}")
        spec = cls(
            name=name,
            target=str(target),
            params=dict(node.get("params") or {}),
            checkpoint=node.get("checkpoint"),
            z_dim=node.get("z_dim"),
            output_range=(float(low_high[0]), float(low_high[1])),
            n_samples=node.get("n_samples", 1000),
            seed=node.get("seed", 0),
            batch_size=node.get("batch_size", 64),
        )
        for key, minimum in (("n_samples", 1), ("seed", 0), ("batch_size", 1)):
            value = getattr(spec, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise DsimError(f"generator.{key} must be an integer >= {minimum}, got {value!r}")
        if spec.n_samples > MAX_SAMPLES:
            raise DsimError(
                f"generator.n_samples={spec.n_samples} is above {MAX_SAMPLES} (the samples folder names "
                "images 0000000.png to 9999999.png): check the value"
            )
        if spec.checkpoint is not None and not Path(str(spec.checkpoint)).expanduser().is_file():
            raise DsimError(
                f"generator.checkpoint: no such file {spec.checkpoint} (a state dict saved with "
                "torch.save(model.state_dict(), PATH), or a .safetensors file)"
            )
        return spec

    @property
    def active(self) -> bool:
        return self.name != "none"

    @cached_property
    def checkpoint_sha256(self) -> str | None:
        if self.checkpoint is None:
            return None
        from dsim.weights import cached_file_sha256

        return cached_file_sha256(Path(str(self.checkpoint)).expanduser().resolve())

    def describe(self) -> dict:
        """What determines the model's outputs (hashed into :attr:`identity`)."""
        return {
            "name": self.name,
            "target": self.target,
            "params": self.params,
            "checkpoint_sha256": self.checkpoint_sha256,
            "z_dim": self.z_dim,
            "output_range": list(self.output_range),
            "version": getattr(self._factory(), "version", None),
            "protocol": PROTOCOL,
        }

    @cached_property
    def identity(self) -> str:
        canonical = json.dumps(self.describe(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def _factory(self):
        from dsim.util.plugins import locate

        return locate(self.target)

    def load(self, device: str = "cpu") -> Generator:
        """The model on ``device``, in eval mode, wrapped in the :class:`Generator` protocol (built once)."""
        key = (self.identity, str(device))
        if key not in _loaded:
            _loaded[key] = Generator(self._build(), self, device)
        return _loaded[key]

    def _build(self):
        import torch

        factory = self._factory()
        if not callable(factory):
            raise DsimError(f"generator._target_ {self.target!r} is not callable")
        try:
            model = factory if _is_generator_function(factory, self.params) else factory(**self.params)
        except DsimError:
            raise
        except (TypeError, ValueError, ArithmeticError, RuntimeError, IndexError, KeyError) as error:
            # the model's constructor rejected its parameters (z_dim=0, a bad shape, ...): one line
            raise DsimError(
                f"generator={self.name}: {self.target}(**generator.params) failed: "
                f"{str(error).splitlines()[0] if str(error) else type(error).__name__}"
            ) from error
        if not callable(model):
            raise DsimError(
                f"generator._target_ {self.target!r} returned {type(model).__name__}, not a model "
                "(a torch.nn.Module or a callable z -> images)"
            )
        if self.checkpoint is not None:
            if not isinstance(model, torch.nn.Module):
                raise DsimError(
                    f"generator.checkpoint needs a torch.nn.Module; {self.target!r} gave a {type(model).__name__}"
                )
            from dsim.weights import load_into

            load_into(model, Path(str(self.checkpoint)).expanduser(), extractor=f"generator {self.name}")
        if isinstance(model, torch.nn.Module):
            model.eval().requires_grad_(False)
        return model


def _is_generator_function(factory, params: dict) -> bool:
    """A plain function that takes z itself (``def g(z)``) rather than building a model."""
    if inspect.isclass(factory) or params:
        return False
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return False
    required = [
        p
        for p in signature.parameters.values()
        if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return bool(required)


#: the most samples one generator folder holds
MAX_SAMPLES = 10**7
#: the largest latent size taken: 2**24 floats (a 3×2048×2048 noise image fits), 128 MiB per float64 latent
MAX_Z_DIM = 2**24


class Generator:
    """A loaded model behind one protocol: latents in, float images in [0, 1] out."""

    def __init__(self, model, spec: GeneratorSpec, device: str):
        import torch

        self.model, self.spec, self.device = model, spec, torch.device(device)
        if isinstance(model, torch.nn.Module):
            model.to(self.device)
        own = getattr(model, "z_dim", None)
        z_dim = spec.z_dim if spec.z_dim is not None else own
        if isinstance(z_dim, bool) or not isinstance(z_dim, int) or z_dim < 1:
            raise DsimError(
                f"generator={spec.name}: its latent size is unknown; set generator.z_dim "
                "(or give the model a z_dim attribute)"
            )
        if isinstance(own, int) and not isinstance(own, bool) and own != z_dim:
            raise DsimError(
                f"generator.z_dim={z_dim}, but generator={spec.name}'s model takes latents of size {own}: "
                "drop generator.z_dim or set the model's own size in generator.params"
            )
        if z_dim > MAX_Z_DIM:
            raise DsimError(
                f"generator.z_dim={z_dim} is above {MAX_Z_DIM} (one latent would take "
                f"{z_dim * 8 / 2**30:.3g} GiB): check the value"
            )
        self.z_dim = z_dim

    @property
    def has_mapping(self) -> bool:
        return callable(getattr(self.model, "mapping", None)) and callable(getattr(self.model, "synthesis", None))

    def images(self, z):
        """N latents → N×3×H×W float32 images in [0, 1]."""
        return self.to_unit(self._call(self.model, z.to(self.device), "z"))

    def mapping(self, z):
        self.need_mapping()
        return self._call(self.model.mapping, z.to(self.device), "z")

    def synthesis(self, w):
        self.need_mapping()
        return self.to_unit(self._call(self.model.synthesis, w, "w"))

    def _call(self, fn, x, what: str):
        """The model's own failure on a batch of latents (a ``z_dim`` it does not take, ...) as one line."""
        try:
            return fn(x)
        except DsimError:
            raise
        except (RuntimeError, ValueError, TypeError, IndexError) as error:
            reason = " ".join(str(error).split())[:200] or type(error).__name__
            raise DsimError(
                f"generator={self.spec.name} failed on {what} latents of shape {tuple(x.shape)}: {reason} "
                "(check generator.z_dim and generator.params)"
            ) from None

    def need_mapping(self) -> None:
        if not self.has_mapping:
            raise DsimError(
                f"generator={self.spec.name} has no mapping network (model.mapping(z) -> w and "
                "model.synthesis(w) -> images): use z-space (metric.params.space=z)"
            )

    def to_unit(self, out):
        """A model's output → N×3×H×W float32 in [0, 1] (see the module docstring)."""
        import torch

        if isinstance(out, (tuple, list)):
            out = out[0]
        if not torch.is_tensor(out) or out.dim() != 4:
            raise DsimError(
                f"generator={self.spec.name} must return an N×C×H×W tensor, got "
                f"{getattr(out, 'shape', type(out).__name__)}"
            )
        if out.shape[1] not in (1, 3) and out.shape[-1] in (1, 3):
            out = out.permute(0, 3, 1, 2)
        if out.shape[1] not in (1, 3):
            raise DsimError(f"generator={self.spec.name} returned {out.shape[1]} channels; dsim takes 1 or 3")
        if out.dtype == torch.uint8:
            out = out.float() / 255.0
        elif not bool(torch.isfinite(out).all()):
            raise DsimError(f"generator={self.spec.name} returned NaN or infinite values")
        else:
            low, high = self.spec.output_range
            out = ((out.float() - low) / (high - low)).clamp(0.0, 1.0)
        return out.expand(-1, 3, -1, -1) if out.shape[1] == 1 else out
