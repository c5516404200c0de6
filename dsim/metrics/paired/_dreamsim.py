"""DreamSim (Fu et al. 2023): the cosine distance between two images' DreamSim embeddings.

``dreamsim`` package's ``PerceptualModel.forward(a, b)`` is ``1 - cos(embed(a), embed(b))``; dsim computes
the same quantity from the ``dreamsim`` extractor's embeddings, so in a grid cell each image is embedded
once and cached like any other embedding, and the weights are found, checked and recorded by the extractor
(``metric.params.weights: default | random | PATH``). The metric itself is the distance of embedding
pairs: ``dreamsim(reference, candidate)`` takes two N×D arrays of DreamSim embeddings (row ``i`` of one
with row ``i`` of the other), e.g. from ``dsim.embed(folder, extractor="dreamsim")``.
"""

from __future__ import annotations

import numpy as np

from dsim.errors import DsimError
from dsim.metrics._checks import integer, text
from dsim.metrics._registry import declare
from dsim.metrics.paired._common import summarize

EXTRACTOR = "dreamsim"


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


@declare(
    "dreamsim",
    higher_is_better=False,
    kind="paired",
    input="features",
    embedding=EXTRACTOR,
    aligned=False,
    ranges={"dreamsim": (0.0, 2.0)},
    doc="DreamSim distance of each image pair (1 - cosine similarity of DreamSim embeddings)",
    notes=("Uses the dreamsim extractor's cached embeddings (its weights: see conf/extractor/dreamsim.yaml).",),
    cell_params={
        "weights": ("default", "default | PATH | random (plumbing tests only)", text()),
        "batch_size": (8, "images per forward pass of the DreamSim network", integer(1)),
    },
)
def dreamsim(reference, candidate):
    """DreamSim distance of embedding pairs (1 − cosine similarity of DreamSim embeddings); lower is better.

    >>> import numpy as np
    >>> round(dreamsim(np.eye(2), np.array([[1.0, 0.0], [1.0, 1.0]]))["dreamsim"], 6)   # (0 + (1 - 1/√2)) / 2
    0.146447
    """
    x, y = np.asarray(reference), np.asarray(candidate)
    if x.ndim != 2 or x.shape != y.shape or not len(x):
        raise DsimError(
            f"dreamsim: pass two N×D arrays of DreamSim embeddings of the same shape (pair i = row i), "
            f"got {x.shape} and {y.shape}"
        )
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise DsimError("dreamsim: the embeddings contain NaN or inf; re-embed those images")
    return summarize("dreamsim", cosine_distance(x, y))
