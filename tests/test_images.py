import numpy as np
import pytest
from PIL import Image

from dsim.errors import DsimError, ImageReadError
from dsim.data.images import dataset_fingerprint, list_images, load_rgb


def _rgb(seed=0, size=(20, 30)):
    return np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)


def test_discovery_is_recursive_case_insensitive_and_sorted(tmp_path):
    (tmp_path / "b" / "deep").mkdir(parents=True)
    for i, name in enumerate(["z.PNG", "b/x.JpEg", "b/deep/y.webp", "a.TIFF", "c.bmp", "d.jpg", "e.tif"]):
        Image.fromarray(_rgb(i)).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"")
    ids = [ref.relpath for ref in list_images(tmp_path)]
    assert ids == sorted(ids)
    assert set(ids) == {"z.PNG", "b/x.JpEg", "b/deep/y.webp", "a.TIFF", "c.bmp", "d.jpg", "e.tif"}


def test_fingerprint_depends_on_content_not_location(tmp_path):
    for root in ("one", "two"):
        (tmp_path / root).mkdir()
        Image.fromarray(_rgb(1)).save(tmp_path / root / "a.png")
    one, two = list_images(tmp_path / "one"), list_images(tmp_path / "two")
    assert dataset_fingerprint(one) == dataset_fingerprint(two)
    Image.fromarray(_rgb(2)).save(tmp_path / "two" / "a.png")
    assert dataset_fingerprint(one) != dataset_fingerprint(list_images(tmp_path / "two"))


@pytest.mark.parametrize("problem", ["missing", "empty", "file"])
def test_bad_dataset_paths_are_one_line_errors(tmp_path, problem):
    target = tmp_path / "x"
    if problem == "empty":
        target.mkdir()
        (target / "readme.txt").write_text("no images here")
    elif problem == "file":
        target.write_text("")
    with pytest.raises(DsimError) as info:
        list_images(target)
    assert "\n" not in str(info.value) and str(target) in str(info.value)


def test_modes_convert_to_8bit_rgb_deterministically(tmp_path):
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "gray16.png")
    Image.fromarray(_rgb()).convert("P").save(tmp_path / "palette.png")
    rgba = np.dstack([_rgb(), np.zeros((20, 30), np.uint8)])  # fully transparent → white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")

    for name in ("gray.png", "gray16.png"):
        out = load_rgb(tmp_path / name)
        assert out.dtype == np.uint8 and out.shape == (16, 16, 3)
        assert np.array_equal(out[..., 0], gray) and np.array_equal(out[..., 0], out[..., 2])
    assert load_rgb(tmp_path / "palette.png").shape == (20, 30, 3)
    assert np.all(load_rgb(tmp_path / "rgba.png") == 255)
    assert np.array_equal(load_rgb(tmp_path / "palette.png"), load_rgb(tmp_path / "palette.png"))


def test_truncated_image_error_names_the_file(tmp_path):
    path = tmp_path / "broken.jpg"
    Image.fromarray(_rgb(size=(64, 64))).save(path, quality=95)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ImageReadError) as info:
        load_rgb(path)
    assert str(path) in str(info.value) and "on_error=skip" in str(info.value)
