"""The embedded default datasets: real photographs, a controlled degradation, and synthetic renders.

``dsim data`` calls :func:`materialize`, which writes four folders of ``N_IMAGES`` RGB PNGs of
``IMAGE_SIZE`` × ``IMAGE_SIZE`` pixels (plus a ``README.md``) under a root folder, by default ``data/``:

``photos_a`` / ``photos_b``
    Random square crops of the public-domain / CC0 sample photographs bundled inside scikit-image
    (:data:`SOURCE_PHOTOS`; no download), with two different seeds: the same distribution, different
    images — a *near* pair.
``photos_b_blurred``
    ``photos_b`` under a Gaussian blur of radius :data:`BLUR_RADIUS` px — a documented, intermediate
    degradation.
``render``
    Procedural Mars-like terrain renders (:func:`dsim.data.renders.render_planetary_surface`) — synthetic
    images, a *far* pair with the photographs.

``data/`` is tracked by DVC, so the bytes must be the same on every machine and every run: every random
choice comes from a seeded ``np.random.default_rng``; nothing depends on time, file-system order or
locale; and PNGs are written by :func:`encode_png`, a tiny fixed encoder (no filtering, stored deflate
blocks, no ancillary chunks) whose output depends on the pixels alone — not on the zlib build or the
Pillow version, as Pillow's own PNG writer's does. Pixels come from Pillow (decode, LANCZOS resize,
Gaussian blur) and numpy, so they are pinned by those libraries' versions; :func:`load_source_photos`
checks the decoded pixels of every source photograph against a recorded digest and warns if they differ.

>>> from dsim.data import samples                             # doctest: +SKIP
>>> samples.materialize("data")                              # doctest: +SKIP
{'photos_a': PosixPath('data/photos_a'), 'photos_b': ..., 'photos_b_blurred': ..., 'render': ...}
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import shutil
import struct
import sys
import time
import uuid
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dsim.errors import DsimError

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "BLUR_RADIUS",
    "CROP_SCALE",
    "DEFAULT_DATASETS",
    "DEFAULT_PAIRS",
    "FLIP_PROBABILITY",
    "IMAGE_SIZE",
    "N_IMAGES",
    "PHOTO_SEEDS",
    "RENDER_SEED_OFFSET",
    "SOURCE_PHOTOS",
    "SourcePhoto",
    "dataset_images",
    "encode_png",
    "generate_dataset",
    "load_source_photos",
    "materialize",
    "readme_text",
]

N_IMAGES = 100  # images per dataset
IMAGE_SIZE = 128  # side of every (square) image, pixels
CROP_SCALE = (0.25, 0.70)  # crop side, as a fraction of the source photo's shorter side
FLIP_PROBABILITY = 0.5  # chance that a crop is mirrored left-right
BLUR_RADIUS = 2.0  # Gaussian blur radius (px, Pillow's ImageFilter.GaussianBlur)
PHOTO_SEEDS = {"photos_a": 1, "photos_b": 2}
RENDER_SEED_OFFSET = 0  # render image i is render_planetary_surface(RENDER_SEED_OFFSET + i)

DEFAULT_DATASETS: dict[str, str] = {
    "photos_a": "real photographs (scikit-image samples), 100 random 128 px crops, seed 1",
    "photos_b": "the same photographs, 100 other random crops (seed 2): near photos_a",
    "photos_b_blurred": f"photos_b with a Gaussian blur (radius {BLUR_RADIUS:g} px): a controlled degradation",
    "render": "100 procedural Mars-like terrain renders (dsim.data.renders): synthetic, far from the photos",
}

DEFAULT_PAIRS: dict[str, tuple[str, str]] = {  # name -> (reference, candidate); matches conf/pair/
    "near": ("photos_a", "photos_b"),
    "degraded": ("photos_a", "photos_b_blurred"),
    "far": ("photos_a", "render"),
}

_STALE_TMP_SECONDS = 600  # leftovers of a killed run older than this are removed


@dataclass(frozen=True)
class SourcePhoto:
    """One photograph shipped inside scikit-image's ``skimage/data`` folder."""

    file: str  # file name in skimage/data
    title: str
    credit: str  # origin, as scikit-image's documentation gives it
    licence: str  # licence, as scikit-image's documentation gives it
    sha256: str  # of the file (matches skimage.data's registry)


# Only bundled photographs whose scikit-image docstring states a licence (public domain / CC0);
# bundled but left out: moon, page, motorcycle_left/right (no licence stated), clock_motion (motion
# blurred on purpose), retina / ihc / cell / microaneurysms (medical / microscopy), text, logo, etc.
SOURCE_PHOTOS: tuple[SourcePhoto, ...] = (
    SourcePhoto(
        "astronaut.png",
        "astronaut Eileen Collins",
        "NASA Great Images database (https://flic.kr/p/r9qvLn)",
        "no known copyright restrictions, released into the public domain",
        "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    ),
    SourcePhoto(
        "camera.png",
        "man with a camera (grayscale)",
        "photographer Lav Varshney",
        "CC0 (no copyright restrictions)",
        "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
    ),
    SourcePhoto(
        "brick.png",
        "brick wall (grayscale)",
        "CC0Textures, Bricks25 (perspective-corrected, cropped)",
        "CC0",
        "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf",
    ),
    SourcePhoto(
        "grass.png",
        "grass (grayscale)",
        "DeviantArt, linolafett, Grass 01 (cropped)",
        "CC0",
        "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89",
    ),
    SourcePhoto(
        "gravel.png",
        "gravel (grayscale)",
        "CC0Textures, Gravel04 (rescaled, cropped)",
        "CC0",
        "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12",
    ),
    SourcePhoto(
        "coins.png",
        "Greek coins from Pompeii (grayscale)",
        "Brooklyn Museum Collection",
        "no known copyright restrictions",
        "f8d773fc9cfa6f4d8e5942dc34d0a0788fcaed2a4fefbbed0aef5398d7ef4cba",
    ),
    SourcePhoto(
        "chelsea.png",
        "Chelsea the cat",
        "photographer Stefan van der Walt",
        "CC0 (no copyright restrictions)",
        "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    ),
    SourcePhoto(
        "coffee.png",
        "coffee cup",
        "photographer Rachel Michetti, courtesy of Pikolo Espresso Bar",
        "CC0 (no copyright restrictions)",
        "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
    ),
    SourcePhoto(
        "hubble_deep_field.jpg",
        "Hubble eXtreme Deep Field",
        "NASA, via HubbleSite (2012 release 37)",
        "NASA: may be freely used, public domain",
        "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4",
    ),
    SourcePhoto(
        "rocket.jpg",
        "DSCOVR launch on a Falcon 9",
        "SpaceX Photos (Flickr)",
        "released into the public domain by SpaceX",
        "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
    ),
)


# ---------------------------------------------------------------------------------------------------
# PNG encoding
# ---------------------------------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_STORED_BLOCK = 65535  # largest stored deflate block


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(image: np.ndarray) -> bytes:
    """Encode an ``(H, W, 3)`` uint8 RGB array as PNG bytes that depend on the pixels alone.

    The file holds exactly IHDR, one IDAT and IEND: 8-bit truecolour, no interlacing, filter type 0
    (None) on every row, and a zlib stream of stored (uncompressed) deflate blocks of 65535 bytes.
    No compressor, no timestamps, no metadata, so the bytes are the same on every machine.

    >>> from PIL import Image
    >>> img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    >>> bool((np.asarray(Image.open(io.BytesIO(encode_png(img)))) == img).all())
    True
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise ValueError(f"expected a non-empty (H, W, 3) uint8 array, got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    rows = np.zeros((height, 1 + 3 * width), dtype=np.uint8)  # leading 0 = filter type None
    rows[:, 1:] = image.reshape(height, 3 * width)
    raw = rows.tobytes()
    stream = bytearray(b"\x78\x01")  # deflate, 32 KiB window, no dict
    for start in range(0, len(raw), _STORED_BLOCK):
        block = raw[start : start + _STORED_BLOCK]
        final = 1 if start + _STORED_BLOCK >= len(raw) else 0
        stream += struct.pack("<BHH", final, len(block), len(block) ^ 0xFFFF) + block
    stream += struct.pack(">I", zlib.adler32(raw))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return _PNG_SIGNATURE + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", bytes(stream)) + _png_chunk(b"IEND", b"")


# ---------------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------------


def _skimage_data_dir() -> Path:
    spec = importlib.util.find_spec("skimage.data") if importlib.util.find_spec("skimage") else None
    if spec is None or not spec.submodule_search_locations:
        raise DsimError("the default photographs come from scikit-image's bundled samples: `pip install scikit-image`")
    return Path(next(iter(spec.submodule_search_locations)))


def _pixels_digest(pixels: np.ndarray) -> str:
    return hashlib.sha256(f"{pixels.shape}".encode() + pixels.tobytes()).hexdigest()


def load_source_photos() -> list[tuple[SourcePhoto, Image.Image]]:
    """Decode :data:`SOURCE_PHOTOS` from scikit-image's data folder as RGB Pillow images.

    Grayscale photographs are replicated to three channels; embedded colour profiles are ignored (the
    stored values are used as they are). Raises :class:`~dsim.errors.DsimError` when a file is missing
    or is not the file recorded in :data:`SOURCE_PHOTOS`; warns when the decoded pixels differ from the
    recorded digest (another image decoder), because the datasets would then not match ``data.dvc``.
    """
    from PIL import Image

    folder = _skimage_data_dir()
    photos = []
    for source in SOURCE_PHOTOS:
        path = folder / source.file
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise DsimError(
                f"scikit-image's sample photograph {path} is missing ({exc.strerror}); "
                "reinstall scikit-image (`pip install --force-reinstall scikit-image`)"
            ) from None
        if hashlib.sha256(content).hexdigest() != source.sha256:
            raise DsimError(
                f"{path} is not the photograph dsim's default datasets are built from "
                f"(sha256 differs from {source.sha256[:12]}…); reinstall scikit-image"
            )
        with Image.open(io.BytesIO(content)) as opened:
            image = opened.convert("RGB")
        pixels = np.asarray(image)
        expected = _PIXEL_DIGESTS.get(source.file)
        if expected is not None and _pixels_digest(pixels) != expected:
            warnings.warn(
                f"the decoded pixels of {path} differ from the reference decode (a different "
                "image decoder?): the generated datasets will not match data.dvc",
                RuntimeWarning,
                stacklevel=2,
            )
        photos.append((source, Image.fromarray(pixels)))  # fresh image: no profile / metadata carried
    return photos


# ---------------------------------------------------------------------------------------------------
# Generators
# ---------------------------------------------------------------------------------------------------


def _photo_crops(seed: int, photos, n: int, size: int) -> Iterator[np.ndarray]:
    """Round-robin over the photographs; a random square crop each, LANCZOS-resized, maybe mirrored."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(n):
        _, photo = photos[i % len(photos)]
        width, height = photo.size
        # draw every random number, in the same order, whatever the branch taken
        scale = rng.uniform(*CROP_SCALE)
        side = max(1, min(width, height, int(round(scale * min(width, height)))))
        left = int(rng.integers(0, width - side + 1))
        top = int(rng.integers(0, height - side + 1))
        flip = bool(rng.random() < FLIP_PROBABILITY)
        crop = photo.resize((size, size), Image.Resampling.LANCZOS, box=(left, top, left + side, top + side))
        if flip:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        yield np.asarray(crop, dtype=np.uint8)


def _blurred(images) -> Iterator[np.ndarray]:
    from PIL import Image, ImageFilter

    for pixels in images:
        yield np.asarray(Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(BLUR_RADIUS)), dtype=np.uint8)


def _renders(n: int, size: int) -> Iterator[np.ndarray]:
    from dsim.data.renders import render_planetary_surface

    for i in range(n):
        yield render_planetary_surface(RENDER_SEED_OFFSET + i, size=size)


def dataset_images(name: str, *, n: int | None = None, size: int | None = None) -> Iterator[np.ndarray]:
    """Yield the images of default dataset ``name`` in order, as ``(size, size, 3)`` uint8 arrays."""
    n = N_IMAGES if n is None else n
    size = IMAGE_SIZE if size is None else size
    if name in PHOTO_SEEDS:
        return _photo_crops(PHOTO_SEEDS[name], load_source_photos(), n, size)
    if name == "photos_b_blurred":
        return _blurred(_photo_crops(PHOTO_SEEDS["photos_b"], load_source_photos(), n, size))
    if name == "render":
        return _renders(n, size)
    raise DsimError(f"unknown default dataset {name!r}; choose one of: {', '.join(DEFAULT_DATASETS)}")


def _file_name(index: int) -> str:
    return f"{index:04d}.png"


def generate_dataset(name: str, *, on_image: Callable[[], None] | None = None) -> dict[str, bytes]:
    """All files of default dataset ``name``: file name (``0000.png``, …) → PNG bytes, in order."""
    files = {}
    for index, pixels in enumerate(dataset_images(name)):
        files[_file_name(index)] = encode_png(pixels)
        if on_image is not None:
            on_image()
    return files


# ---------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------


def _digests(files: Mapping[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


def _folder_digests(folder: Path) -> dict[str, str] | None:
    """Relative POSIX path → sha256 of every file under ``folder``; None if it is not a plain folder."""
    if folder.is_symlink() or not folder.is_dir():
        return None
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            return None
        if path.is_file():
            found[path.relative_to(folder).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _remove_leftovers(root: Path, name: str) -> None:
    """Remove what a killed run left behind: ``.<name>.old-*`` always, ``.<name>.tmp-*`` once stale."""
    now = time.time()
    for path in root.glob(f".{name}.old-*"):
        _remove(path)
    for path in root.glob(f".{name}.tmp-*"):
        try:
            stale = now - path.stat().st_mtime > _STALE_TMP_SECONDS
        except FileNotFoundError:
            continue
        if stale:
            _remove(path)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _install_folder(root: Path, name: str, files: Mapping[str, bytes], force: bool) -> bool:
    """Make ``root/name`` hold exactly ``files``; atomic per folder. Returns whether it was written."""
    target = root / name
    wanted = _digests(files)
    if not force and _folder_digests(target) == wanted:
        return False
    staging = root / f".{name}.tmp-{uuid.uuid4().hex}"
    staging.mkdir()  # unlike mkdtemp, honours the umask
    aside = root / f".{name}.old-{uuid.uuid4().hex}"
    try:
        for file_name, data in files.items():
            _write_file(staging / file_name, data)
        if target.exists() or target.is_symlink():
            os.rename(target, aside)
        try:
            os.rename(staging, target)
        except OSError:
            # another run installed the folder in between: fine if it holds the same files
            if _folder_digests(target) != wanted:
                raise
    finally:
        _remove(staging)
        _remove(aside)
    return True


def _install_text(path: Path, text: str, force: bool) -> bool:
    data = text.encode("utf-8")
    if not force and path.is_file() and not path.is_symlink() and path.read_bytes() == data:
        return False
    staging = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    try:
        _write_file(staging, data)
        os.replace(staging, path)
    finally:
        _remove(staging)
    return True


def materialize(root: str | os.PathLike, *, force: bool = False, progress: bool = True) -> dict[str, Path]:
    """Write the default datasets into ``root/<name>/`` (and ``root/README.md``); return name → folder.

    Every dataset is generated afresh and compared with what is on disk: a folder that already holds
    exactly the generated files is left untouched (a re-run is a no-op), anything else — missing,
    partial, edited, extra files — is replaced. Each folder is written into a temporary sibling and
    renamed into place, so a run killed halfway never leaves a half-written dataset. ``force`` rewrites
    the folders even when they are already right. ``progress`` shows a progress bar on stderr.
    """
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise DsimError(f"cannot write the default datasets into {root}: it is not a folder") from None
    from tqdm import tqdm

    written: dict[str, Path] = {}
    with tqdm(
        total=len(DEFAULT_DATASETS) * N_IMAGES,
        desc="dsim data",
        unit="img",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    ) as bar:
        for name in DEFAULT_DATASETS:
            bar.set_postfix_str(name)
            _remove_leftovers(root, name)
            files = generate_dataset(name, on_image=lambda: bar.update(1))
            _install_folder(root, name, files, force)
            written[name] = root / name
    _remove_leftovers(root, "README.md")
    _install_text(root / "README.md", readme_text(), force)
    return written


# ---------------------------------------------------------------------------------------------------
# README
# ---------------------------------------------------------------------------------------------------


def _per_photo() -> str:
    low, extra = divmod(N_IMAGES, len(SOURCE_PHOTOS))
    return f"{low}" if not extra else f"{low} or {low + 1}"


def readme_text() -> str:
    """The ``README.md`` written next to the datasets (deterministic: no dates, no versions)."""
    lo, hi = CROP_SCALE
    datasets = "\n".join(f"| `{name}/` | {text} |" for name, text in DEFAULT_DATASETS.items())
    sources = "\n".join(f"| `{s.file}` | {s.title} | {s.credit} | {s.licence} |" for s in SOURCE_PHOTOS)
    pairs = "\n".join(f"- **{pair}**: `{ref}` vs `{cand}`" for pair, (ref, cand) in DEFAULT_PAIRS.items())
    return f"""# dsim default datasets

Written by `dsim data` (`dsim.data.samples.materialize`) and tracked by DVC (`data.dvc`). Do not edit:
any change is undone by the next `dsim data`. Every file is regenerated bit for bit from seeds, so the
folder's DVC hash is the same on every machine (given the same Pillow and numpy versions).

Each dataset is a folder of {N_IMAGES} RGB PNG images of {IMAGE_SIZE}×{IMAGE_SIZE} pixels, named
`0000.png` … `{N_IMAGES - 1:04d}.png`.

| folder | contents |
|---|---|
{datasets}

Default pairs (reference vs candidate), from near to far:

{pairs}

## photos_a, photos_b: real photographs

Random square crops of {len(SOURCE_PHOTOS)} sample photographs that ship inside the scikit-image package
(`skimage/data/`, no download). Image *i* comes from photograph *i* mod {len(SOURCE_PHOTOS)} (in the
order of the table below), so both sets draw {_per_photo()} crops from each photograph.
Per image, from `numpy.random.default_rng(seed)` (seed {PHOTO_SEEDS["photos_a"]} for `photos_a`,
{PHOTO_SEEDS["photos_b"]} for `photos_b`): crop side = U({lo:g}, {hi:g}) × the photograph's shorter side,
a uniformly random position, a left-right mirror with probability {FLIP_PROBABILITY:g}; then a Pillow
LANCZOS resize to {IMAGE_SIZE}×{IMAGE_SIZE}. Grayscale photographs are replicated to three channels;
embedded colour profiles are ignored.

| file | photograph | source | licence (as stated by scikit-image) |
|---|---|---|---|
{sources}

The licences are those stated in the documentation of the matching `skimage.data` loader functions
(`skimage/data/README.txt` itself only notes that the package bundles a subset of scikit-image's sample
data). All of the photographs used here are public domain or CC0; the crops are derived works under the
same terms. Other bundled samples are not used: `moon`, `page` and the stereo `motorcycle` pair have no
licence statement there, `clock_motion` is motion-blurred on purpose, and the rest are microscopy,
medical, text or synthetic images.

## photos_b_blurred: a controlled degradation

`photos_b`, image by image, under Pillow's `ImageFilter.GaussianBlur(radius={BLUR_RADIUS:g})` (edges
extended). Same content as `photos_b`, less high-frequency detail: an intermediate distance between the
near pair and the synthetic one.

## render: procedural planetary surface

Mars-like terrain seen from a rover-height camera, drawn by `dsim.data.renders.render_planetary_surface(seed)`
for seeds {RENDER_SEED_OFFSET} … {RENDER_SEED_OFFSET + N_IMAGES - 1} with numpy only: a periodic
fractional-Brownian-motion heightmap (spectral synthesis) with seeded impact craters and boulders; a
reddish-ochre palette varied by an albedo field, height and slope; Lambertian hillshading under a seeded
sun; a column-by-column ray march of the heightfield through a pinhole camera with seeded position,
heading and field of view; a dusty sky gradient and distance haze; 2× supersampling. These images are
generated by dsim and are part of the project (same licence as dsim).

## Reproducibility

PNGs are written by dsim's own encoder (`dsim.data.samples.encode_png`: filter type 0, stored deflate
blocks, no metadata chunks), so the bytes depend on the pixels alone. The pixels depend on seeds and on
the decoding, resizing and blurring in Pillow and the arithmetic in numpy; the source photographs are
checked against their sha256 before use.
"""


# sha256 of each source photograph's decoded RGB pixels with the reference decoder (Pillow with
# libjpeg-turbo for the two JPEGs); a mismatch only warns, see load_source_photos.
_PIXEL_DIGESTS: dict[str, str] = {
    "astronaut.png": "7605af19ba2b975845037d479d9429d3fbc334ff78c7b51f67f112d50f85ed65",
    "camera.png": "bf98e824a0e89e0e5fc9883963758bfd21453203a3fb1f22a32c108d939ffac6",
    "brick.png": "99a19145a42e52da5b5b773b8119c94ea04cf5c0242e95ffbaa0293713878bb7",
    "grass.png": "4893a5041b9268d1c29dcc9cdf6e79f40c66c5c37f3c7a5c0dcfecfa3e73bb50",
    "gravel.png": "53724b7da1e0a01104d6e14da4dd2ca65a3ead9a2a69f0eb6f20121f8bb7b2ec",
    "coins.png": "8b1c53f5b1e7777136997a7597388c6a234c1306d77175d0de5cbd8ec72b0c20",
    "chelsea.png": "2a48da897e30584d1ae09abf8802730963e97735ab7f4ccede25b412ab11e5dd",
    "coffee.png": "013a8175a6f60538e29aa8bee676f3e4b4c9a4388defc9a81368b20fc7b3fe9c",
    "hubble_deep_field.jpg": "b368ad50e13b6113ba330ad1fdd6dbe41ad8074c2c97791f5f34d510b886586e",
    "rocket.jpg": "9d55b6a566c73f3c20e2e36b81acc5d14fddc66453247ba544eced175a87cf54",
}
