"""Pixel-level paired metrics: PSNR and MS-SSIM on 8-bit RGB image pairs."""

from __future__ import annotations

import warnings

import numpy as np

from dsim.errors import DsimError
from dsim.metrics.paired._common import as_image_pairs, check_batch_size, shape_batches, summarize, to_tensor

#: Wang, Simoncelli & Bovik (2003) scale weights, the MS-SSIM default of every reference implementation.
MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


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
