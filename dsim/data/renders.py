"""Procedural planetary-surface renders: the synthetic half of dsim's default datasets.

``render_planetary_surface(seed)`` draws a Mars-like landscape as a rover-height camera would see it,
with numpy only and every random choice taken from ``np.random.default_rng(seed)``:

1. **Terrain.** A periodic fractional-Brownian-motion heightmap by spectral synthesis: white Gaussian
   noise filtered in the Fourier domain by the amplitude spectrum ``f^-(H+1)`` (Hurst exponent ``H``
   drawn per image), plus seeded impact craters (parabolic bowl, raised rim that fades outwards) and
   scattered boulders (Gaussian bumps).
2. **Surface colour.** A reddish-ochre palette mixed from dark basalt to bright dust by an independent
   low-frequency albedo field and by height; steep slopes and boulders turn darker and greyer.
   Lambertian hillshading under a seeded sun (azimuth, elevation) plus ambient sky light.
3. **Camera.** A pinhole camera a little above the ground, seeded position, heading, field of view and
   horizon line. The heightfield is ray-marched per image column ("voxel-space" renderer): terrain
   samples at geometrically spaced depths are projected to screen rows, and each pixel takes the colour
   of the nearest sample whose top reaches it.
4. **Atmosphere.** Pixels the terrain does not cover get a dusty butterscotch sky gradient with a glow
   towards the sun; ground colour fades into the horizon haze with distance (exponential fog).
5. Rendered at 2x resolution, box-filtered down (anti-aliasing) and quantised to ``uint8``.

The output is a plausible synthetic terrain, clean and noise-free, clearly not a photograph. It is
deterministic: the same seed gives the same array (up to last-bit floating-point differences between
numpy builds, which vanish in the uint8 quantisation in all but astronomically rare cases).
"""

from __future__ import annotations

import numpy as np

__all__ = ["render_planetary_surface"]

_SUPERSAMPLE = 2  # render at this multiple of the output size, then box-filter down
_TERRAIN = 256  # heightmap side (samples); the terrain tiles periodically
_DEPTH_SAMPLES = 256  # ray-march steps per image column
_Z_NEAR, _Z_FAR = 0.6, 0.9 * _TERRAIN

# sRGB-ish reflectances (0..1)
_BASALT = np.array([0.30, 0.20, 0.16])
_DUST = np.array([0.80, 0.53, 0.33])
_ROCK = np.array([0.42, 0.34, 0.29])
_SKY_TOP = np.array([0.47, 0.37, 0.31])
_SKY_HORIZON = np.array([0.86, 0.70, 0.54])
_SUN_GLOW = np.array([0.98, 0.90, 0.78])


def _spectral_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Periodic n×n noise with amplitude spectrum f^-exponent, zero mean, unit std."""
    white = rng.standard_normal((n, n))
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    f = np.hypot(fx, fy)
    f[0, 0] = 1.0
    amplitude = f**-exponent
    amplitude[0, 0] = 0.0
    field = np.fft.irfft2(np.fft.rfft2(white) * amplitude, s=(n, n))
    field -= field.mean()
    return field / field.std()


def _add_craters(rng: np.random.Generator, height: np.ndarray, count: int) -> None:
    """Carve ``count`` craters (parabolic bowl, raised rim fading outwards) into a periodic heightmap."""
    n = height.shape[0]
    for _ in range(count):
        cy, cx = rng.uniform(0, n, size=2)
        radius = rng.uniform(8.0, 36.0)
        depth = radius * rng.uniform(0.12, 0.22)
        rim = depth * rng.uniform(0.25, 0.45)
        reach = min(int(np.ceil(2.5 * radius)), (n - 1) // 2)  # the rim term is < 1e-4 beyond
        offsets = np.arange(-reach, reach + 1)
        rows = (int(np.floor(cy)) + offsets) % n
        cols = (int(np.floor(cx)) + offsets) % n
        dy = (np.floor(cy) + offsets - cy)[:, None]
        dx = (np.floor(cx) + offsets - cx)[None, :]
        d = np.hypot(dx, dy) / radius
        inside = d < 1.0
        profile = np.where(inside, rim + depth * (d**2 - 1.0), rim * np.exp(-(((d - 1.0) / 0.45) ** 2)))
        window = np.ix_(rows, cols)
        # the crater floor is smoother than the surrounding terrain
        height[window] = height[window] * np.where(inside, 0.55 + 0.45 * d**2, 1.0) + profile


def _boulders(rng: np.random.Generator, n: int, count: int) -> np.ndarray:
    """Gaussian bumps (sigma ~0.7 samples) at random places, by FFT convolution of impulses."""
    impulses = np.zeros((n, n))
    ys = rng.integers(0, n, size=count)
    xs = rng.integers(0, n, size=count)
    np.add.at(impulses, (ys, xs), rng.uniform(0.4, 1.0, size=count))
    sigma = 0.7
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    transfer = np.exp(-2.0 * (np.pi * sigma) ** 2 * (fx**2 + fy**2))
    field = np.fft.irfft2(np.fft.rfft2(impulses) * transfer, s=(n, n))
    return field * (2.0 * np.pi * sigma**2) * 1.2  # unit-integral kernel -> peak height ~1.2 w


def _sample_wrapped(grid: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of a periodic n×n×c grid at real coordinates (x: column) → (..., c)."""
    n, _, channels = grid.shape
    flat = grid.reshape(n * n, channels)
    x0 = np.floor(x)
    y0 = np.floor(y)
    tx = (x - x0)[..., None]
    ty = (y - y0)[..., None]
    x0 = x0.astype(np.intp) % n
    y0 = y0.astype(np.intp) % n
    x1 = (x0 + 1) % n
    row0 = y0 * n
    row1 = ((y0 + 1) % n) * n
    top = np.take(flat, row0 + x0, axis=0) * (1 - tx) + np.take(flat, row0 + x1, axis=0) * tx
    bottom = np.take(flat, row1 + x0, axis=0) * (1 - tx) + np.take(flat, row1 + x1, axis=0) * tx
    return top * (1 - ty) + bottom * ty


def render_planetary_surface(seed: int, size: int = 128) -> np.ndarray:
    """Render one procedural Mars-like landscape.

    Parameters
    ----------
    seed:
        Seed of ``np.random.default_rng``; every choice (terrain, craters, sun, camera, palette) follows
        from it, so the same seed always gives the same image.
    size:
        Output side in pixels (square image).

    Returns
    -------
    numpy.ndarray
        ``(size, size, 3)`` ``uint8`` RGB image.

    Examples
    --------
    >>> img = render_planetary_surface(0, size=64)
    >>> img.shape, img.dtype
    ((64, 64, 3), dtype('uint8'))
    >>> bool((img == render_planetary_surface(0, size=64)).all())
    True
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    rng = np.random.default_rng(seed)
    n = _TERRAIN

    # 1. terrain --------------------------------------------------------------------------------
    hurst = rng.uniform(0.65, 0.95)
    relief = rng.uniform(1.2, 4.5)
    height = relief * _spectral_noise(rng, n, hurst + 1.0)
    _add_craters(rng, height, int(rng.integers(1, 7)))
    rocks = _boulders(rng, n, int(rng.integers(150, 700)))
    height += rocks

    # 2. surface colour and shading -------------------------------------------------------------
    gy, gx = (np.asarray(g) for g in np.gradient(np.pad(height, 1, mode="wrap")))
    gy, gx = gy[1:-1, 1:-1], gx[1:-1, 1:-1]
    slope = np.hypot(gx, gy)
    albedo_field = _spectral_noise(rng, n, rng.uniform(1.6, 2.2))
    h_norm = (height - height.mean()) / (height.std() + 1e-12)
    dust = 1.0 / (1.0 + np.exp(-(1.4 * albedo_field + 0.5 * h_norm + rng.uniform(-0.5, 0.8))))
    base = _BASALT + dust[..., None] * (_DUST - _BASALT)
    rockiness = np.clip(slope / 1.2 + rocks / 1.5, 0.0, 0.85)[..., None]
    base = base * (1.0 - rockiness) + _ROCK * rockiness
    exposure, warmth = rng.uniform(0.9, 1.1), rng.normal()
    base = base * exposure * (1.0 + warmth * np.array([0.03, 0.0, -0.04]))

    sun_azimuth = rng.uniform(0.0, 2.0 * np.pi)
    sun_elevation = np.deg2rad(rng.uniform(12.0, 55.0))
    sun = np.array(
        [
            np.cos(sun_elevation) * np.cos(sun_azimuth),
            np.cos(sun_elevation) * np.sin(sun_azimuth),
            np.sin(sun_elevation),
        ]
    )
    normal_len = np.sqrt(gx**2 + gy**2 + 1.0)
    lambert = np.clip((-gx * sun[0] - gy * sun[1] + sun[2]) / normal_len, 0.0, None)
    ambient = rng.uniform(0.3, 0.45)
    light = ambient + (1.0 - ambient) * lambert / max(sun[2], 0.3)
    surface = np.clip(base * light[..., None], 0.0, 1.0)

    # 3. camera and ray march -------------------------------------------------------------------
    s = size * _SUPERSAMPLE
    fov = np.deg2rad(rng.uniform(50.0, 75.0))
    focal = (s / 2) / np.tan(fov / 2)
    horizon = s * rng.uniform(0.22, 0.45)
    cam_x, cam_y = rng.uniform(0, n, size=2)
    heading = rng.uniform(0.0, 2.0 * np.pi)
    ground_below = float(_sample_wrapped(height[..., None], np.array(cam_x), np.array(cam_y))[0])
    cam_h = ground_below + np.exp(rng.uniform(np.log(1.5), np.log(12.0)))  # log-uniform 1.5..12

    forward = np.array([np.cos(heading), np.sin(heading)])
    right = np.array([-forward[1], forward[0]])
    depth = _Z_NEAR * (_Z_FAR / _Z_NEAR) ** np.linspace(0.0, 1.0, _DEPTH_SAMPLES)  # (K,)
    lateral = (np.arange(s) + 0.5 - s / 2) / focal  # (W,)
    wx = cam_x + depth[:, None] * (forward[0] + lateral[None, :] * right[0])  # (K, W)
    wy = cam_y + depth[:, None] * (forward[1] + lateral[None, :] * right[1])
    sampled = _sample_wrapped(np.dstack([surface, height]), wx, wy)  # (K, W, 4)
    ground_rgb, ground_h = sampled[..., :3], sampled[..., 3]
    top_row = horizon + focal * (cam_h - ground_h) / depth[:, None]  # (K, W)

    # the nearest sample whose (running-minimum) top row is at or above a pixel centre colours it;
    # per column the running minimum is monotone, so one searchsorted over offset keys does all columns
    reach = np.minimum.accumulate(np.clip(top_row, -2.0, s + 2.0), axis=0)  # (K, W)
    stride = s + 10.0
    columns = np.arange(s)
    keys = (-reach + columns[None, :] * stride).T.ravel()  # column-major
    centres = np.arange(s) + 0.5
    queries = (-centres[:, None] + columns[None, :] * stride).T.ravel()  # (W*H,)
    hit = np.searchsorted(keys, queries, side="left").reshape(s, s).T  # (H, W) global
    hit -= (columns * _DEPTH_SAMPLES)[None, :]
    is_sky = hit >= _DEPTH_SAMPLES
    k = np.minimum(hit, _DEPTH_SAMPLES - 1)

    # 4. atmosphere -----------------------------------------------------------------------------
    t = np.clip((centres - (horizon - 0.9 * s)) / (0.9 * s), 0.0, 1.0)[:, None]  # 0 top, 1 horizon
    sky = _SKY_TOP + (t**1.5)[..., None] * (_SKY_HORIZON - _SKY_TOP)  # (H, 1, 3)
    view_azimuth = heading + np.arctan(lateral)  # (W,)
    glow = np.exp(-3.0 * (1.0 - np.cos(view_azimuth - sun_azimuth))) * (1.0 - sun_elevation / 1.6)
    sky = sky + 0.25 * glow[None, :, None] * (_SUN_GLOW - sky)
    sky = np.broadcast_to(sky, (s, s, 3))
    haze_distance = rng.uniform(0.25, 0.6) * _Z_FAR
    fog = 1.0 - np.exp(-depth / haze_distance)  # (K,)
    haze = _SKY_HORIZON * (1.0 + 0.015 * rng.standard_normal(3))
    ground = np.take(ground_rgb.reshape(-1, 3), k * s + columns[None, :], axis=0)  # (H, W, 3)
    ground = ground + np.take(fog, k)[..., None] * (haze - ground)
    image = np.where(is_sky[..., None], sky, ground)

    # 5. anti-alias and quantise ----------------------------------------------------------------
    image = image.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE, 3).mean(axis=(1, 3))
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
