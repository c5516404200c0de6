"""Perturbations of a candidate dataset (config group ``perturb=``): blur, noise, JPEG, brightness, crop.

A perturbed dataset is a real folder: every candidate image, decoded, perturbed and written losslessly
(PNG) under ``<cache_dir>/perturbed/<dataset>-<name>-<strength>-<key>/``, the key being a hash of the
source dataset's fingerprint, the perturbation, its strength and seed. So the embedding store, pairing,
entropy, lineage and every metric treat it like any folder, the perturbed image's content hash is its
cache key, and the same config always gives byte-identical images (an image's random draws are seeded by
``perturb.seed`` and the image's own content hash, never by its position).

=============  ===========================================================  ===============
``name``       ``strength``                                                 unchanged at
=============  ===========================================================  ===============
``none``       —                                                            —
``blur``       Gaussian radius in pixels (PIL ``GaussianBlur``)             0
``noise``      σ of additive Gaussian noise on 8-bit values, then clipped   0
``jpeg``       JPEG quality 1–100 (PIL/libjpeg, 4:2:0), then decoded        —
``brightness`` factor on every channel (PIL ``ImageEnhance.Brightness``)    1
``crop``       fraction of each side cut away at a seeded offset, resized   0
               back to the original size (bicubic)
=============  ===========================================================  ===============

>>> import numpy as np
>>> image = np.full((8, 8, 3), 100, dtype=np.uint8)
>>> int(perturb_image(image, "brightness", 1.5, seed=0, key="ab").max())
150
>>> noisy = perturb_image(image, "noise", 4.0, seed=0, key="ab")
>>> np.array_equal(noisy, perturb_image(image, "noise", 4.0, seed=0, key="ab"))
True
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from dsim.data.derived import make_once, png_bytes
from dsim.errors import DsimError
from dsim.util.fileio import atomic_write_bytes

NAMES = ("none", "blur", "noise", "jpeg", "brightness", "crop")
#: bump when a perturbation's pixels change, so old folders are not reused
VERSION = 1


@dataclass(frozen=True)
class Perturbation:
    """A perturbation as configured: ``name`` (one of :data:`NAMES`), ``strength``, ``seed``."""

    name: str = "none"
    strength: float = 0.0
    seed: int = 0

    @classmethod
    def from_config(cls, node: dict | None) -> Perturbation:
        node = dict(node or {})
        spec = cls(str(node.get("name", "none")), node.get("strength", 0.0), node.get("seed", 0))
        spec.check()
        return spec

    def check(self) -> None:
        if self.name not in NAMES:
            raise DsimError(f"perturb.name must be one of {', '.join(NAMES)}, got {self.name!r}")
        if self.name == "none":
            if self.strength not in (0, None):  # a strength alone would be silently ignored
                raise DsimError(
                    f"perturb.strength={self.strength!r} has no effect with perturb=none: choose the "
                    f"perturbation too (perturb={'|'.join(NAMES[1:])}), or leave perturb.strength out"
                )
            return
        s = self.strength
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not np.isfinite(s):
            raise DsimError(f"perturb.strength must be a number, got {s!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise DsimError(f"perturb.seed must be an integer >= 0, got {self.seed!r}")
        rule = {
            "blur": (s >= 0, "a radius >= 0 (px)"),
            "noise": (s >= 0, "a noise sigma >= 0 (8-bit values)"),
            "jpeg": (s == int(s) and 1 <= s <= 100, "a JPEG quality, an integer 1..100"),
            "brightness": (s > 0, "a brightness factor > 0 (1 = unchanged)"),
            "crop": (0 <= s < 1, "the fraction of each side cut away, 0 <= strength < 1"),
        }[self.name]
        if not rule[0]:
            raise DsimError(f"perturb={self.name}: perturb.strength must be {rule[1]}, got {s!r}")

    @property
    def active(self) -> bool:
        return self.name != "none"

    def label(self) -> str:
        """``blur2``, ``jpeg30``, ``brightness1.3``: how the perturbed dataset is named."""
        return f"{self.name}{self.strength:g}"

    def describe(self) -> dict:
        return {"name": self.name, "strength": float(self.strength), "seed": int(self.seed), "version": VERSION}


def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(hashlib.sha256(key.encode()).hexdigest()[:15], 16)])


def perturb_image(image: np.ndarray, name: str, strength: float, *, seed: int = 0, key: str = "") -> np.ndarray:
    """One H×W×3 ``uint8`` image perturbed; ``key`` (the image's content hash) seeds its random draws."""
    if name == "none":
        return image
    if name == "noise":
        noisy = image.astype(np.float64) + _rng(seed, key).normal(0.0, float(strength), size=image.shape)
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    picture = Image.fromarray(image)
    if name == "blur":
        out = picture.filter(ImageFilter.GaussianBlur(radius=float(strength))) if strength > 0 else picture
    elif name == "jpeg":
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=int(strength))
        out = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    elif name == "brightness":
        out = ImageEnhance.Brightness(picture).enhance(float(strength))
    elif name == "crop":
        h, w = image.shape[:2]
        keep_h, keep_w = max(1, round(h * (1 - strength))), max(1, round(w * (1 - strength)))
        rng = _rng(seed, key)
        y, x = int(rng.integers(0, h - keep_h + 1)), int(rng.integers(0, w - keep_w + 1))
        out = picture.crop((x, y, x + keep_w, y + keep_h))
        out = out.resize((w, h), Image.Resampling.BICUBIC) if (keep_h, keep_w) != (h, w) else out
    else:
        raise DsimError(f"perturb.name must be one of {', '.join(NAMES)}, got {name!r}")
    return np.asarray(out, dtype=np.uint8)


def target_names(relpaths: list[str]) -> dict[str, str]:
    """Source relpath → the PNG's relpath (same stem, so ``pairing=by_name`` still pairs them)."""
    out, taken = {}, set()
    for rel in relpaths:
        path = PurePosixPath(rel)
        name = path.with_suffix(".png").as_posix()
        if name in taken:  # a.jpg and a.png side by side
            name = path.with_name(f"{path.name}.png").as_posix()
        taken.add(name)
        out[rel] = name
    return out


def perturbed_dataset(
    source: str | os.PathLike,
    spec: Perturbation,
    cache_dir: str | os.PathLike,
    *,
    on_error: str = "raise",
    progress: bool = False,
) -> Path:
    """The folder of ``source``'s images under ``spec``: made once (resumable, under a lock), then reused."""
    from dsim.data.images import dataset_fingerprint, scan_images

    source = Path(source)
    listing = scan_images(source, on_error=on_error, progress=progress)
    identity = {"dataset": dataset_fingerprint(listing.files), **spec.describe()}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    folder = Path(cache_dir) / "perturbed" / f"{source.resolve().name}-{spec.label()}-{key}"
    return make_once(
        folder,
        lambda target: _write_perturbed(listing, spec, target, on_error, progress),
        {"source": str(source.resolve()), **identity},
    )


def _write_perturbed(listing, spec: Perturbation, folder: Path, on_error: str, progress: bool) -> dict:
    from dsim.data.images import load_rgb
    from dsim.errors import ImageReadError

    names = target_names([ref.relpath for ref in listing.files])
    refs = listing.files
    if progress:
        from tqdm.auto import tqdm

        refs = tqdm(refs, desc=f"perturb {spec.label()} {listing.root.name}", unit="img")
    skipped = dict(listing.unreadable)
    for ref in refs:
        target = folder / names[ref.relpath]
        if target.is_file():  # written before an interruption: atomic, so complete
            continue
        try:
            image = load_rgb(ref.path)
        except ImageReadError as error:
            if on_error != "skip":
                raise
            skipped[ref.relpath] = error.reason
            continue
        atomic_write_bytes(
            target,
            png_bytes(perturb_image(image, spec.name, spec.strength, seed=spec.seed, key=ref.sha256)),
            durable=False,
        )
    return {"images": len(listing.files) - len(skipped), "skipped": skipped}
