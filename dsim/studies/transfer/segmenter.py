"""A small crack segmenter that trains on a CPU in seconds: a per-pixel logistic regression on a filter bank.

Why this model: the study retrains it dozens of times (strategies × seeds × q), which a U-Net cannot do on
two CPU cores in minutes; a fixed ridge filter with a tuned threshold (one parameter) could not adapt to a
new set at all. Eight per-pixel features — the grey level normalised per image by its median and
inter-quartile range, its Gaussian blur, its darkness against the surroundings, Sato's ridge filter for
dark ridges at σ = 1, 2, 3 and the local contrast — and a bias are weighted by an L2-regularised logistic
regression (Newton's method, exact and deterministic), so a handful of images of a new set can move the
decision toward what cracks look like there.

Images are worked on at half resolution (masks by 2×2 max-pooling, so 1-px cracks survive). A pixel is a
crack when its probability passes the threshold chosen on the training images (the one that maximises
their mean F-score). The F-score of an image uses a tolerance of ``TOLERANCE`` pixels (at half resolution:
about 2 px of the original), as crack benchmarks do: a predicted pixel is right when a true crack pixel
is that near, and a true pixel is found when a predicted one is that near. An image with no crack pixels
scores 1 when nothing is predicted on it and 0 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

TOLERANCE = 1  # pixels at half resolution
FEATURES = ("grey", "blur", "darkness", "sato_1", "sato_2", "sato_3", "contrast")
THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.01), 2)
SAMPLES_PER_IMAGE = 1500  # training pixels drawn per image: up to half crack, the rest background


def load_image(path: Path) -> np.ndarray:
    """The image as a float grey level in [0, 1], at half resolution."""
    grey = np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255
    return _half(grey, np.mean)


def load_mask(path: Path) -> np.ndarray:
    """The mask (white = crack) as booleans at half resolution (2×2 max-pooling)."""
    mask = np.asarray(Image.open(path).convert("L")) > 127
    return _half(mask, np.max)


def _half(array: np.ndarray, pool) -> np.ndarray:
    h, w = (array.shape[0] // 2) * 2, (array.shape[1] // 2) * 2
    return pool(array[:h, :w].reshape(h // 2, 2, w // 2, 2), axis=(1, 3))


def pixel_features(grey: np.ndarray) -> np.ndarray:
    """The H×W×F feature maps of :data:`FEATURES`."""
    from skimage.filters import sato

    low, median, high = np.percentile(grey, (25, 50, 75))
    g = (grey - median) / max(high - low, 1e-3)
    blur = ndimage.gaussian_filter(g, 2)
    darkness = ndimage.gaussian_filter(g, 6) - g
    contrast = np.sqrt(np.maximum(ndimage.gaussian_filter(g * g, 2) - blur * blur, 0))
    ridges = [sato(g, sigmas=[s], black_ridges=True) for s in (1, 2, 3)]
    return np.stack([g, blur, darkness, *ridges, contrast], axis=-1).astype(np.float32)


@dataclass
class Example:
    """One labelled image: its feature maps and mask."""

    name: str
    features: np.ndarray
    mask: np.ndarray

    @classmethod
    def load(cls, image: Path, mask: Path) -> Example:
        """The image and its mask (the same size, give or take the odd row or column an export may add)."""
        from dsim.errors import DsimError

        try:
            grey, truth = load_image(image), load_mask(mask)
        except (OSError, ValueError) as error:
            raise DsimError(f"cannot read {image} or its mask {mask}: {error}") from None
        if abs(grey.shape[0] - truth.shape[0]) > 1 or abs(grey.shape[1] - truth.shape[1]) > 1:
            raise DsimError(
                f"mask {mask} is {truth.shape[1] * 2}x{truth.shape[0] * 2} but its image {image} is "
                f"{grey.shape[1] * 2}x{grey.shape[0] * 2}: give the masks at the images' size"
            )
        h, w = min(grey.shape[0], truth.shape[0]), min(grey.shape[1], truth.shape[1])
        return cls(Path(image).stem, pixel_features(grey[:h, :w]), truth[:h, :w])


@dataclass
class Segmenter:
    """Logistic-regression weights over :data:`FEATURES` (standardised) and the decision threshold."""

    weights: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    threshold: float = 0.5

    def probability(self, features: np.ndarray) -> np.ndarray:
        z = ((features - self.mean) / self.scale) @ self.weights[:-1] + self.weights[-1]
        return 1 / (1 + np.exp(-np.clip(z, -30, 30)))

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.probability(features) >= self.threshold


def sample_pixels(example: Example, rng: np.random.Generator, n: int = SAMPLES_PER_IMAGE):
    """Up to ``n / 2`` crack pixels and the rest background, drawn from one image: (features, labels)."""
    flat = example.features.reshape(-1, example.features.shape[-1])
    truth = example.mask.reshape(-1)
    crack, background = np.flatnonzero(truth), np.flatnonzero(~truth)
    take = rng.choice(crack, min(len(crack), n // 2), replace=False) if len(crack) else crack
    rest = rng.choice(background, min(len(background), n - len(take)), replace=False)
    rows = np.concatenate([take, rest])
    return flat[rows], truth[rows].astype(np.float64)


def train(examples: list[Example], *, weights: list[float] | None = None, seed: int = 0, l2: float = 1e-3) -> Segmenter:
    """Fit the logistic regression on pixels drawn from ``examples`` (each image's pixels weighted by
    ``weights``, default 1), then choose the threshold that maximises their weighted mean F-score."""
    rng = np.random.default_rng(seed)
    weights = [1.0] * len(examples) if weights is None else list(weights)
    xs, ys, ws = [], [], []
    for example, weight in zip(examples, weights, strict=True):
        x, y = sample_pixels(example, rng)
        xs.append(x)
        ys.append(y)
        ws.append(np.full(len(y), weight))
    x, y, w = np.concatenate(xs).astype(np.float64), np.concatenate(ys), np.concatenate(ws)
    mean, scale = x.mean(0), x.std(0) + 1e-6
    design = np.column_stack([(x - mean) / scale, np.ones(len(x))])
    beta = newton_logistic(design, y, w, l2=l2 * w.sum())
    model = Segmenter(beta, mean, scale)
    model.threshold = best_threshold(model, examples, weights)
    return model


def newton_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, *, l2: float, steps: int = 50) -> np.ndarray:
    """Weighted, L2-regularised logistic regression by Newton's method (the bias column unpenalised)."""
    beta = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[-1] = 0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(x @ beta, -30, 30)))
        gradient = x.T @ (w * (p - y)) + penalty * beta
        hessian = (x * (w * p * (1 - p))[:, None]).T @ x + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return beta


def f_score(predicted: np.ndarray, truth: np.ndarray, tolerance: int = TOLERANCE) -> float:
    """F-score of a predicted crack map against the mask, each side matched within ``tolerance`` pixels."""
    if not truth.any():
        return 1.0 if not predicted.any() else 0.0
    if not predicted.any():
        return 0.0
    near_truth = within(truth, tolerance)
    near_predicted = within(predicted, tolerance)
    precision = (predicted & near_truth).sum() / predicted.sum()
    recall = (truth & near_predicted).sum() / truth.sum()
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


def within(mask: np.ndarray, tolerance: int) -> np.ndarray:
    """The pixels within ``tolerance`` (Euclidean) of a pixel of ``mask``."""
    if tolerance <= 0:
        return mask
    r = np.arange(-tolerance, tolerance + 1)
    disk = (r[:, None] ** 2 + r[None, :] ** 2) <= tolerance**2
    return ndimage.binary_dilation(mask, structure=disk)


def best_threshold(model: Segmenter, examples: list[Example], weights: list[float]) -> float:
    """The threshold of :data:`THRESHOLDS` with the highest weighted mean F-score over ``examples``."""
    probabilities = [model.probability(e.features) for e in examples]

    def mean_f(t: float) -> float:
        return float(
            np.average([f_score(p >= t, e.mask) for p, e in zip(probabilities, examples, strict=True)], weights=weights)
        )

    coarse = THRESHOLDS[::5]  # every 0.05, then every 0.01 around the best of those
    best = float(coarse[int(np.argmax([mean_f(t) for t in coarse]))])
    fine = THRESHOLDS[np.abs(THRESHOLDS - best) <= 0.045]
    return float(fine[int(np.argmax([mean_f(t) for t in fine]))])


def scores(model: Segmenter, examples: list[Example]) -> dict[str, float]:
    """Each image's F-score at the model's threshold, by image stem."""
    return {e.name: f_score(model.predict(e.features), e.mask) for e in examples}
