"""DreamSim (Fu et al. 2023): the cosine distance between two images' DreamSim embeddings.

``dreamsim`` package's ``PerceptualModel.forward(a, b)`` is ``1 - cos(embed(a), embed(b))``; dsim computes
the same quantity from the ``dreamsim`` extractor's embeddings (:mod:`dsim.extractors`), so in a grid cell
each image is embedded once and cached like any other embedding, and the weights are found, checked and
recorded by the extractor (``weights: default | random | PATH``).
"""

from __future__ import annotations

import numpy as np
import torch

from dsim.metrics.paired._common import as_image_pairs, check_batch_size, summarize

EXTRACTOR = "dreamsim"

_loaded: dict[tuple[str, str], torch.nn.Module] = {}


def cosine_distance(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Row-wise ``1 - cos(reference[i], candidate[i])`` of two N×D arrays, in float64.

    >>> import numpy as np
    >>> cosine_distance(np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[0.0, 2.0], [2.0, 2.0]])).round(12).tolist()
    [1.0, 0.0]
    """
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(candidate, dtype=np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return 1.0 - (a * b).sum(axis=1) / np.maximum(norms, np.finfo(np.float64).tiny)


def build_extractor(weights: str = "default"):
    """The ``dreamsim`` extractor of :mod:`dsim.extractors` with these weights."""
    from dsim.extractors import build

    return build(EXTRACTOR, weights=weights)


def embed_images(extractor, images, *, device: str = "cpu", batch_size: int = 8) -> np.ndarray:
    """Features of in-memory H×W×3 uint8 images through ``extractor`` (its own preprocessing)."""
    key = (extractor.identity, str(device))
    if key not in _loaded:
        _loaded[key] = extractor.load(torch.device(device))
    model = _loaded[key]
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = torch.stack([extractor.preprocess(image) for image in images[start:start + batch_size]])
            out.append(extractor.features(model, batch.to(device)).double().cpu().numpy())
    return np.concatenate(out)


def dreamsim(reference, candidate, *, weights: str = "default", device: str = "cpu", batch_size: int = 8):
    """DreamSim distance of image pairs (1 − cosine similarity of DreamSim embeddings); lower is better.

    The two images of a pair may differ in size (each is preprocessed by the extractor on its own).
    """
    refs, cands = as_image_pairs(reference, candidate, metric="dreamsim", same_shape=False)
    batch_size = check_batch_size(batch_size, "dreamsim")
    extractor = build_extractor(weights)
    values = cosine_distance(embed_images(extractor, refs, device=device, batch_size=batch_size),
                             embed_images(extractor, cands, device=device, batch_size=batch_size))
    return summarize("dreamsim", values)
