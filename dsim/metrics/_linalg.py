"""Dense products and symmetric eigen-solvers for the metrics, on the tensors' own device.

On CPU they run through NumPy's BLAS/LAPACK on zero-copy views of the tensors; on other devices they
stay in torch. On our 2-core AMD EPYC machines NumPy's OpenBLAS is 1.2–1.7× faster than torch's MKL
build for the same GEMM and 4× faster for ``eigvalsh`` (MKL takes slow code paths on AMD CPUs); NumPy
also computes ``A @ A.T`` with a symmetric rank-k update (half the flops). Both backends are
deterministic for given inputs; between them results agree to floating-point rounding.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import numpy as np
import torch

try:  # present with scikit-learn (an mlflow dependency); without it, LAPACK keeps its default threads
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None


NUMPY_ON_CPU = True  # False: CPU tensors take the torch code path that other devices take (tests use it)


def use_numpy(*tensors: torch.Tensor) -> bool:
    """Whether work on these tensors goes through NumPy (CPU tensors, unless switched off)."""
    return NUMPY_ON_CPU and all(t.device.type == "cpu" for t in tensors)


def matmul_nt(a: torch.Tensor, b: torch.Tensor, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """``a @ bᵀ`` over the last two dimensions ((…, n, D) × (…, m, D) → (…, n, m)).

    Pass the same tensor twice for a Gram matrix: on CPU that takes the symmetric (half-cost) path.
    """
    if use_numpy(a, b):
        an = a.detach().numpy()
        bn = an if b is a else b.detach().numpy()
        if out is None:
            return torch.from_numpy(np.matmul(an, np.swapaxes(bn, -1, -2)))
        np.matmul(an, np.swapaxes(bn, -1, -2), out=out.numpy())
        return out
    if out is None:
        return a @ b.transpose(-1, -2)
    return torch.matmul(a, b.transpose(-1, -2), out=out)


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for 2-D tensors."""
    if use_numpy(a, b):
        return torch.from_numpy(a.detach().numpy() @ b.detach().numpy())
    return a @ b


def gram_t(a: torch.Tensor) -> torch.Tensor:
    """``aᵀ @ a`` for an (n, D) tensor → (D, D); on CPU a BLAS symmetric rank-k update (half the flops)."""
    if use_numpy(a):
        an = a.detach().numpy()
        if an.dtype == np.float64 and an.flags.c_contiguous:
            from scipy.linalg import blas

            upper = blas.dsyrk(1.0, an.T, trans=0)  # an.T is Fortran-ordered: no copy; fills the upper triangle
            lower = np.tril_indices(upper.shape[0], -1)
            upper[lower] = upper.T[lower]
            return torch.from_numpy(upper)
        return torch.from_numpy(an.T @ an)
    return a.T @ a


def lower_congruence(lower: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``Lᵀ·S·L`` for a lower-triangular L and a symmetric S.

    On CPU, LAPACK's ``dsygst`` (the reduction step of the generalised symmetric eigenproblem) forms it
    in n³ flops, half of two triangular products, and fills **only the lower triangle** — the triangle
    :func:`eigvalsh` and :func:`eigh` read. Elsewhere it is the full product.
    """
    if use_numpy(lower, s):
        from scipy.linalg import lapack

        reduced, info = lapack.dsygst(s.detach().numpy(), lower.detach().numpy(), itype=3, lower=1)
        if info != 0:  # pragma: no cover - dsygst only fails on malformed arguments
            raise ValueError(f"LAPACK dsygst failed (info={info})")
        return torch.from_numpy(reduced)
    return lower.T @ s @ lower


def _one_blas_thread():
    """Symmetric eigen-solvers spend half their time in O(n) sequential BLAS-2 calls, each a thread
    barrier; on a busy machine every barrier waits for a descheduled thread (2048×2048 eigenvalues:
    0.85 s on one thread vs 1.2–2.1 s on two beside one competing process; 0.5 vs 0.4 s when idle)."""
    return threadpool_limits(1, user_api="blas") if threadpool_limits is not None else nullcontext()


def eigvalsh(m: torch.Tensor) -> torch.Tensor:
    """Eigenvalues (ascending) of a symmetric matrix, read from its lower triangle."""
    if use_numpy(m):
        from scipy.linalg import eigh as scipy_eigh

        with _one_blas_thread():
            w = scipy_eigh(m.detach().numpy(), eigvals_only=True, driver="evr", check_finite=False)
        return torch.from_numpy(w)
    return torch.linalg.eigvalsh(m)


def eigh(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (ascending) and eigenvectors (columns) of a symmetric matrix, read from its lower triangle."""
    if use_numpy(m):
        with _one_blas_thread():
            w, v = np.linalg.eigh(m.detach().numpy())
        return torch.from_numpy(w), torch.from_numpy(v)
    return torch.linalg.eigh(m)


def svd_vt(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Singular values (descending) and right singular vectors (rows of Vᵀ) of a matrix, thin SVD."""
    if use_numpy(m):
        _, s, vt = np.linalg.svd(m.detach().numpy(), full_matrices=False)
        return torch.from_numpy(s), torch.from_numpy(vt)
    _, s, vt = torch.linalg.svd(m, full_matrices=False)
    return s, vt


# ---------------------------------------------------------------------------------------------------
# "native" arrays: a NumPy view of a CPU tensor, the tensor itself elsewhere. Hot elementwise loops run
# on native arrays, so on CPU they never enter torch's OpenMP pool: on a loaded 2-core machine (parallel
# Hydra jobs) each of its parallel regions waits for a descheduled thread — 10 ms for a 300×300
# multiply, 200× the single-threaded time. The helpers below take either kind of array.


def native(t: torch.Tensor):
    """A NumPy view of a CPU tensor (no copy); the tensor itself on any other device."""
    return t.detach().numpy() if use_numpy(t) else t


def as_tensor(a, device: torch.device | str) -> torch.Tensor:
    """A native array back as a tensor on ``device`` (no copy for NumPy → CPU)."""
    return torch.as_tensor(a, device=device) if isinstance(a, (np.ndarray, np.generic)) else a.to(device)


def take_rows(a, index: np.ndarray):
    """``a[index]`` for a native array and a NumPy integer index array (any shape)."""
    return a[index] if isinstance(a, np.ndarray) else a[torch.from_numpy(index).to(a.device)]


def mm_nt(a, b):
    """``a @ bᵀ`` over the last two dimensions of native arrays (same object twice: symmetric product)."""
    if isinstance(a, np.ndarray):
        return np.matmul(a, np.swapaxes(b, -1, -2))
    return a @ b.transpose(-1, -2)


def clamp_min_(a, value: float):
    """In-place ``max(a, value)``."""
    if isinstance(a, np.ndarray):
        return np.maximum(a, value, out=a)
    return a.clamp_min_(value)


def expm1_(a):
    """In-place ``exp(a) - 1``."""
    return np.expm1(a, out=a) if isinstance(a, np.ndarray) else a.expm1_()


def sqrt_(a):
    """In-place square root."""
    return np.sqrt(a, out=a) if isinstance(a, np.ndarray) else a.sqrt_()


def as_dtype(a, dtype: str):
    """A native array in ``dtype`` ("float32" or "float64"); the array itself when it already is."""
    if isinstance(a, np.ndarray):
        return a.astype(dtype, copy=False)
    return a.to(getattr(torch, dtype))


def sum_last(a):
    """Sum over the last dimension of a native array, accumulated in float64 whatever its dtype."""
    if isinstance(a, np.ndarray):
        return a.sum(-1, dtype=np.float64)
    return a.sum(-1, dtype=torch.float64)


def diagonal_sum(a):
    """Sum of the diagonal of each matrix in a (…, m, m) native array → (…), accumulated in float64."""
    if isinstance(a, np.ndarray):
        return np.einsum("...ii->...", a, dtype=np.float64)
    return torch.diagonal(a, dim1=-2, dim2=-1).sum(-1, dtype=torch.float64)


@contextmanager
def ieee_float32_matmul():
    """Full-precision float32 products inside the block: TF32 off (on GPUs that have it), restored after.

    TF32 keeps 10 mantissa bits — errors of 1e-3, which no float64 sum can undo. NumPy on CPU never
    uses it. Torch ≥ 2.9 refuses reads that mix its new and legacy TF32 switches, so only the API that
    this torch has is touched, and a legacy setting made by the user stays readable afterwards.
    """
    matmul = torch.backends.cuda.matmul
    name, value = ("fp32_precision", "ieee") if hasattr(matmul, "fp32_precision") else ("allow_tf32", False)
    before = getattr(matmul, name)
    setattr(matmul, name, value)
    try:
        yield
    finally:
        setattr(matmul, name, before)
