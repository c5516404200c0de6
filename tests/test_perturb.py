"""Perturbations of the candidate (``perturb=``): exact, seeded, content-addressed, and metrics follow them."""

import json
import multiprocessing
import sys
from pathlib import Path

import numpy as np
import pytest
from dsim_testing import cell_config, one_line_error, run_dsim, tracking_uri
from PIL import Image, ImageFilter

from dsim.pipeline import run_cell
from dsim.errors import DsimError
from dsim.data.images import list_images, load_rgb
from dsim.data.perturb import Perturbation, perturb_image, perturbed_dataset

sys.path.insert(0, str(Path(__file__).parent / "paired"))
from paired_helpers import photo_tiles, write_pngs  # noqa: E402

RNG = np.random.default_rng(0)
IMAGE = (RNG.random((48, 64, 3)) * 255).astype(np.uint8)
NEUTRAL = {"blur": 0.0, "noise": 0.0, "brightness": 1.0, "crop": 0.0}
STRONGER = {"blur": (1.0, 3.0), "noise": (4.0, 32.0), "jpeg": (90, 10), "brightness": (1.1, 1.8), "crop": (0.1, 0.5)}


@pytest.mark.parametrize("name", sorted(NEUTRAL))
def test_neutral_strength_leaves_the_pixels_unchanged(name):
    assert np.array_equal(perturb_image(IMAGE, name, NEUTRAL[name], seed=0, key="k"), IMAGE)


@pytest.mark.parametrize("name", sorted(STRONGER))
def test_more_strength_moves_the_pixels_further(name):
    weak, strong = (perturb_image(IMAGE, name, s, seed=0, key="k") for s in STRONGER[name])
    assert weak.shape == strong.shape == IMAGE.shape and weak.dtype == np.uint8
    change = [np.abs(x.astype(float) - IMAGE).mean() for x in (weak, strong)]
    assert 0 < change[0] < change[1]


def test_each_perturbation_matches_its_definition():
    blurred = np.asarray(Image.fromarray(IMAGE).filter(ImageFilter.GaussianBlur(radius=2.0)))
    assert np.array_equal(perturb_image(IMAGE, "blur", 2.0), blurred)
    noisy = perturb_image(IMAGE, "noise", 10.0, seed=3, key="abc").astype(float) - IMAGE
    inside = (IMAGE > 40) & (IMAGE < 215)  # away from clipping
    assert noisy[inside].std() == pytest.approx(10.0, rel=0.05) and abs(noisy[inside].mean()) < 0.3
    bright = perturb_image(np.full((4, 4, 3), 100, np.uint8), "brightness", 1.3)
    assert (bright == 130).all()


def test_random_draws_follow_seed_and_image_not_order():
    same = [perturb_image(IMAGE, "noise", 8.0, seed=1, key="hash-a") for _ in range(2)]
    assert np.array_equal(*same)
    assert not np.array_equal(same[0], perturb_image(IMAGE, "noise", 8.0, seed=2, key="hash-a"))
    assert not np.array_equal(same[0], perturb_image(IMAGE, "noise", 8.0, seed=1, key="hash-b"))


@pytest.mark.parametrize("node, message", [
    ({"name": "blurr"}, "perturb.name must be one of"),
    ({"name": "blur", "strength": -1}, "radius >= 0"),
    ({"name": "jpeg", "strength": 0}, "quality, an integer 1..100"),
    ({"name": "jpeg", "strength": 30.5}, "quality, an integer 1..100"),
    ({"name": "brightness", "strength": 0}, "factor > 0"),
    ({"name": "crop", "strength": 1.0}, "0 <= strength < 1"),
    ({"name": "noise", "strength": 4, "seed": -1}, "perturb.seed must be an integer >= 0"),
])
def test_bad_perturbations_are_one_line(node, message):
    with pytest.raises(DsimError, match=message):
        Perturbation.from_config(node)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """17 bundled photos × 4 tiles: 68 real 128-px images."""
    return write_pngs(tmp_path_factory.mktemp("photos") / "photos", photo_tiles())


def test_perturbed_dataset_is_content_addressed_and_reused(tmp_path, photos):
    spec = Perturbation("jpeg", 30, 0)
    folder = perturbed_dataset(photos, spec, tmp_path / "cache")
    files = list_images(folder)
    assert len(files) == 68 and all(f.relpath.endswith(".png") for f in files)
    source = {Path(f.relpath).stem: f for f in list_images(photos)}
    first = files[0]
    expected = perturb_image(load_rgb(source[Path(first.relpath).stem].path), "jpeg", 30, key="")
    assert np.array_equal(load_rgb(first.path), expected)  # lossless: the PNG holds the perturbed pixels exactly
    stamp = first.path.stat().st_mtime_ns
    assert perturbed_dataset(photos, spec, tmp_path / "cache") == folder and first.path.stat().st_mtime_ns == stamp
    assert perturbed_dataset(photos, Perturbation("jpeg", 50, 0), tmp_path / "cache") != folder
    meta = json.loads((folder / ".complete.json").read_text())
    assert meta["name"] == "jpeg" and meta["strength"] == 30 and meta["images"] == 68


def _make(args):
    photos, cache = args
    return str(perturbed_dataset(photos, Perturbation("noise", 8.0, 0), cache))


@pytest.mark.slow
def test_two_processes_make_one_identical_folder(tmp_path, photos):
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        made = pool.map(_make, [(photos, tmp_path / "cache")] * 2)
    assert made[0] == made[1]
    again = perturbed_dataset(photos, Perturbation("noise", 8.0, 0), tmp_path / "other")
    assert [f.sha256 for f in list_images(made[0])] == [f.sha256 for f in list_images(again)]  # byte-identical


def _cell(tmp, photos, metric, perturb, strength, extractor="efficientnet_lite0"):
    cfg = cell_config(tmp, [f"extractor={extractor}", f"metric={metric}", "pairing=by_name",
                            f"pair.reference={photos}", f"pair.candidate={photos}", f"perturb={perturb}",
                            f"perturb.strength={strength}"])
    return run_cell(cfg, tmp / f"job-{metric}-{perturb}-{strength}")


@pytest.mark.slow
@pytest.mark.parametrize("perturb, strengths", [("blur", (0, 1, 2, 4)), ("noise", (0, 8, 16, 32))])
def test_fid_and_kid_grow_and_psnr_falls_with_strength_on_real_photos(tmp_path, photos, perturb, strengths):
    fid = [_cell(tmp_path, photos, "fid", perturb, s)["values"]["fid"] for s in strengths]
    kid = [_cell(tmp_path, photos, "kid_poly", perturb, s)["values"]["kid_poly"] for s in strengths]
    psnr = [_cell(tmp_path, photos, "psnr", perturb, s)["values"]["psnr"] for s in strengths[1:]]
    assert abs(fid[0]) < 1e-3 * fid[1] and all(a < b for a, b in zip(fid, fid[1:])), fid  # strength 0: the same images
    assert all(a < b for a, b in zip(kid, kid[1:])), kid
    assert all(a > b for a, b in zip(psnr, psnr[1:])), psnr


@pytest.mark.slow
def test_a_strength_sweep_plots_every_metric_on_the_parent_run(tmp_path, photos):
    from mlflow.tracking import MlflowClient

    done = run_dsim("-m", "extractor=pixels", "metric=fid,kid_poly", f"pair.reference={photos}",
                    f"pair.candidate={photos}", "perturb=blur", "perturb.strength=0,2,4", "progress=false",
                    f"cache_dir={tmp_path / 'cache'}", f"tracking.store_dir={tmp_path / 'mlruns'}",
                    f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert "perturb.strength" in done.stdout  # the results table keeps the strengths apart
    table = (tmp_path / "sweep" / "perturbation" / "perturbation.csv").read_text().splitlines()
    assert table[0] == "perturbation,strength,extractor,pair,metric,value" and len(table) == 1 + 6
    client = MlflowClient(tracking_uri=tracking_uri(tmp_path))
    parent = next(r for r in client.search_runs(client.get_experiment_by_name("dsim").experiment_id)
                  if r.data.tags.get("dsim.kind") == "sweep")
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "perturbation")}
    assert logged == {"perturbation/perturbation.csv", "perturbation/perturbation.png"}
    assert parent.data.metrics["pixels.fid.photos_vs_photos.strength_spearman_rho"] == pytest.approx(1.0)


def test_cache_gc_drops_derived_datasets_not_kept_and_leaves_one_being_made(tmp_path, photos):
    from filelock import FileLock

    from dsim.data.derived import make_once

    cache = tmp_path / "cache"
    kept = perturbed_dataset(photos, Perturbation("blur", 1.0, 0), cache)
    gone = perturbed_dataset(photos, Perturbation("jpeg", 30, 0), cache)
    original = {p.name: p.read_bytes() for p in gone.iterdir() if p.suffix == ".png"}
    samples = make_once(cache / "generated" / "toy-n2-seed0-abc", lambda f: (f / "000.png").write_bytes(b"x") and {},
                        {"recipe": "test"})
    busy = cache / "perturbed" / "busy-noise8-0123"
    busy.mkdir()
    run_dsim("embed", str(gone), "--extractor", "pixels", "--out", "gone.npz", "--cache-dir", str(cache), cwd=tmp_path)
    typo = run_dsim("cache", "gc", "--keep", str(kept) + "-typo", "--cache-dir", str(cache), cwd=tmp_path, check=False)
    assert "dataset folder to keep does not exist" in one_line_error(typo) and gone.is_dir() and samples.is_dir()
    with FileLock(str(busy.parent / f".{busy.name}.lock")):  # as if a cell were making it now
        dry = run_dsim("cache", "gc", "--keep", str(kept), "--cache-dir", str(cache), "--dry-run", cwd=tmp_path).stdout
        assert f"{gone}: drop the derived dataset ({len(original) + 1} files" in dry and "[dry run]" in dry
        assert gone.is_dir() and samples.is_dir()
        done = run_dsim("cache", "gc", "--keep", str(kept), "--cache-dir", str(cache), cwd=tmp_path).stdout
    assert f"{kept}: kept" in done and f"{busy}: being made by another process, left alone" in done
    assert not gone.exists() and not samples.exists() and kept.is_dir() and busy.is_dir()
    assert "drop the whole identity" in done  # the dropped folder's embeddings go with it
    again = perturbed_dataset(photos, Perturbation("jpeg", 30, 0), cache)  # made again, byte for byte
    assert again == gone and {p.name: p.read_bytes() for p in again.iterdir() if p.suffix == ".png"} == original
