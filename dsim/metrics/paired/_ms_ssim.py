"""MS-SSIM: multi-scale structural similarity of each image pair (torchmetrics), on 8-bit RGB."""

from __future__ import annotations

import warnings

import numpy as np

from dsim.errors import DsimError
from dsim.metrics._checks import integer, positive, positive_numbers
from dsim.metrics._registry import declare
from dsim.metrics.paired._common import as_image_pairs, check_batch_size, shape_batches, summarize, to_tensor

#: Wang, Simoncelli & Bovik (2003) scale weights, the MS-SSIM default of every reference implementation.
MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim_values(
    reference,
    candidate,
    *,
    kernel_size: int = 11,
    sigma: float = 1.5,
    betas: tuple = MS_SSIM_BETAS,
    device: str = "cpu",
    batch_size: int = 8,
) -> np.ndarray:
    """Per-pair MS-SSIM (torchmetrics, Gaussian window, data range 255, ``normalize="relu"``)."""
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as ms_ssim_fn

    refs, cands = as_image_pairs(reference, candidate, metric="ms_ssim")
    batch_size = check_batch_size(batch_size, "ms_ssim")
    betas = tuple(float(b) for b in betas)
    kernel_size = int(kernel_size)
    scales = len(betas)
    need = max(kernel_size * max(1, scales - 1) ** 2, 2**scales)  # torchmetrics' rule for the smaller side
    out = np.empty(len(refs))
    for indices in shape_batches(refs, batch_size):
        h, w = refs[indices[0]].shape[:2]
        if min(h, w) < need:
            raise DsimError(
                f"ms_ssim: {w}×{h} images are too small for {scales} scales with a {kernel_size}-px window "
                f"(the smaller side must be at least {need} px); set pairing.size={need} to resize pairs, or "
                "metric.params.kernel_size=7 (or fewer metric.params.betas)"
            )
        x = to_tensor(refs, indices, device).mul_(255.0)  # float32: float64 convolutions are ~5x slower
        y = to_tensor(cands, indices, device).mul_(255.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            values = ms_ssim_fn(
                y,
                x,
                gaussian_kernel=True,
                sigma=float(sigma),
                kernel_size=kernel_size,
                reduction="none",
                data_range=255.0,
                betas=betas,
                normalize="relu",
            )
        out[indices] = values.reshape(-1).cpu().numpy()
    return out


@declare(
    "ms_ssim",
    higher_is_better=True,
    kind="paired",
    pair_values=ms_ssim_values,
    ranges={"ms_ssim": (-1.0, 1.0)},
    doc="Multi-scale SSIM of each image pair (torchmetrics; Gaussian window, 5 scales); 1 = identical",
    notes=("Needs images of at least kernel_size * 16 px a side (176 with the defaults): see pairing.size.",),
    params={
        "kernel_size": ("Gaussian window size in px (odd)", integer(3)),
        "sigma": ("Gaussian window sigma", positive()),
        "betas": ("per-scale weights (Wang et al. 2003)", positive_numbers(5)),
        "batch_size": ("image pairs per forward pass", integer(1)),
    },
)
def ms_ssim(
    reference,
    candidate,
    *,
    kernel_size: int = 11,
    sigma: float = 1.5,
    betas: tuple = MS_SSIM_BETAS,
    device: str = "cpu",
    batch_size: int = 8,
):
    """Multi-scale SSIM of aligned 8-bit RGB image pairs (0 to 1, 1 for identical images); higher is better.

    torchmetrics' implementation: 11-px Gaussian window (σ 1.5), 5 scales with the standard weights,
    data range 255, per-scale contrast terms clipped at 0 (``normalize="relu"``) so no pair gives NaN. The
    smaller image side must be at least 176 px (``kernel_size·(scales - 1)²``, torchmetrics' rule) with the
    defaults.

    >>> import numpy as np
    >>> a = np.random.default_rng(0).integers(0, 256, size=(1, 176, 176, 3), dtype=np.uint8)
    >>> round(ms_ssim(a, a)["ms_ssim"], 6)
    1.0
    """
    return summarize(
        "ms_ssim",
        ms_ssim_values(
            reference,
            candidate,
            kernel_size=kernel_size,
            sigma=sigma,
            betas=betas,
            device=device,
            batch_size=batch_size,
        ),
    )
