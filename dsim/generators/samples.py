"""A generator's samples as a dataset folder (``pair.candidate=generator``), and the latents behind them.

Sample ``i`` is drawn from its own seeded stream (``generator.seed``, ``i``): the same config gives the
same latents whatever the batch size or ``n_samples``, and so byte-identical PNGs (lossless, written by
:func:`dsim.data.derived.png_bytes`). The folder, ``<cache_dir>/generated/<name>-n<N>-seed<S>-<key>/``, is
named by a hash of the generator's identity, ``n_samples``, ``seed`` and the device type (a GPU's
arithmetic differs from a CPU's in the last bits); it is made once under a lock and resumed after an
interruption (:func:`dsim.data.derived.make_once`), so caching, lineage and every metric treat it as any folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from dsim.data.derived import is_complete, make_once, png_bytes
from dsim.generators.source import GeneratorSpec
from dsim.util.fileio import atomic_write_bytes

GENERATED_DIR = "generated"
#: latents drawn at once are at most this many float64 values (1 GiB); batches shrink to fit (samples do not
#: depend on the batch size)
LATENT_FLOATS_PER_BATCH = 2**27


def latents(seed: int, indices, z_dim: int) -> np.ndarray:
    """The standard-normal latents of samples ``indices`` (float32, one seeded stream per sample)."""
    return np.stack([np.random.default_rng([int(seed), int(i)]).standard_normal(z_dim) for i in indices]).astype(
        np.float32
    )


def sample_name(index: int) -> str:
    return f"{index:07d}.png"


def samples_folder(spec: GeneratorSpec, cache_dir: str | Path, device_type: str) -> Path:
    """Where ``spec``'s samples live (made or not)."""
    identity = {"generator": spec.identity, "n_samples": spec.n_samples, "seed": spec.seed, "device": device_type}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir) / GENERATED_DIR / f"{spec.name}-n{spec.n_samples}-seed{spec.seed}-{key}"


def generated_dataset(
    spec: GeneratorSpec, cache_dir: str | Path, *, device: str = "cpu", progress: bool = False
) -> Path:
    """The folder of ``spec.n_samples`` samples: made once (resumable, under a lock), then reused."""
    import torch

    device_type = torch.device(device).type
    folder = samples_folder(spec, cache_dir, device_type)
    if is_complete(folder):
        return folder
    recipe = {
        "generator": spec.describe(),
        "identity": spec.identity,
        "n_samples": spec.n_samples,
        "seed": spec.seed,
        "device": device_type,
    }
    return make_once(folder, lambda target: _write_samples(spec, target, device, progress), recipe)


def _write_samples(spec: GeneratorSpec, folder: Path, device: str, progress: bool) -> dict:
    import torch

    model = spec.load(device)
    missing = [i for i in range(spec.n_samples) if not (folder / sample_name(i)).is_file()]
    bar = None
    if progress and missing:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(missing), desc=f"generate {spec.name}", unit="img")
    with torch.inference_mode():
        step = max(1, min(spec.batch_size, LATENT_FLOATS_PER_BATCH // model.z_dim))  # bounded latent memory
        for start in range(0, len(missing), step):
            batch = missing[start : start + step]
            images = model.images(torch.from_numpy(latents(spec.seed, batch, model.z_dim)))
            pixels = (images * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            for index, image in zip(batch, pixels):
                atomic_write_bytes(folder / sample_name(index), png_bytes(np.ascontiguousarray(image)), durable=False)
            if bar is not None:
                bar.update(len(batch))
    if bar is not None:
        bar.close()
    return {"images": spec.n_samples}
