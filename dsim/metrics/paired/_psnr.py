"""PSNR: the peak signal-to-noise ratio of each image pair in dB, on 8-bit RGB."""

from __future__ import annotations

import numpy as np

from dsim.metrics._checks import optional, positive
from dsim.metrics._registry import declare
from dsim.metrics.paired._common import as_image_pairs, summarize


def psnr_values(reference, candidate, *, data_range: float = 255.0, max_db: float | None = 100.0) -> np.ndarray:
    """Per-pair PSNR in dB: ``10·log10(data_range² / MSE)``, MSE over all pixels and channels (float64).

    A pair of identical images (MSE 0) has infinite PSNR; ``max_db`` caps every value (``None``: no cap).
    """
    refs, cands = as_image_pairs(reference, candidate, metric="psnr")
    out = np.empty(len(refs))
    for i, (a, b) in enumerate(zip(refs, cands)):
        mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
        with np.errstate(divide="ignore"):
            out[i] = 10.0 * np.log10(float(data_range) ** 2 / mse) if mse > 0 else np.inf
    if max_db is not None:
        out = np.minimum(out, float(max_db))
    return out


@declare(
    "psnr",
    higher_is_better=True,
    kind="paired",
    pair_values=psnr_values,
    doc="Peak signal-to-noise ratio of each image pair in dB on 8-bit RGB",
    notes=("Pairs come from pairing= (default nearest); reports mean, median, best, worst and the entropy bias.",),
    params={
        "data_range": ("the images' value range", positive()),
        "max_db": ("cap: identical images would give infinity; null: no cap", optional(positive())),
    },
)
def psnr(reference, candidate, *, data_range: float = 255.0, max_db: float | None = 100.0):
    """Peak signal-to-noise ratio of aligned 8-bit RGB image pairs, in dB; higher is better.

    ``reference`` and ``candidate`` are lists of H×W×3 ``uint8`` images (or N×H×W×3 arrays), pair ``i``
    being ``(reference[i], candidate[i])``. Returns the mean and median over pairs and, in
    ``per_image["candidate"]["psnr"]``, each pair's value. Identical images give ``max_db`` (100 dB; an
    uncapped value would be infinite).

    >>> import numpy as np
    >>> a = np.zeros((1, 4, 4, 3), dtype=np.uint8)
    >>> round(psnr(a, a + 1)["psnr"], 4)      # MSE 1 → 20·log10(255)
    48.1308
    """
    return summarize("psnr", psnr_values(reference, candidate, data_range=data_range, max_db=max_db))
