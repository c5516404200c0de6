"""Generators as inputs: config, identity, safe checkpoints, the samples folder, and cells on generated images."""

import hashlib
import json
import multiprocessing
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from dsim_testing import cell_config, one_line_error, run_dsim, tracking_uri

from dsim.pipeline import run_cell
from dsim.errors import DsimError
from dsim.generators import GeneratorSpec, generated_dataset, latents, samples_folder
from dsim.generators.toy import ToyGenerator
from dsim.data.images import list_images, load_rgb

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # gen_models: generators a project writes itself

TOY = {"name": "toy", "_target_": "dsim.generators.toy.ToyGenerator",
       "params": {"z_dim": 16, "w_dim": 16, "resolution": 32, "channels": 16}, "n_samples": 40, "batch_size": 16}


def toy(**over) -> GeneratorSpec:
    return GeneratorSpec.from_config({**TOY, **over})


def digests(folder: Path) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.png"))]


def test_identity_follows_what_changes_the_outputs(tmp_path):
    base = toy()
    assert base.identity == toy().identity
    assert base.identity == toy(n_samples=7, seed=3, batch_size=2).identity  # how many, which: the folder's name
    assert base.identity != toy(params={**TOY["params"], "init_seed": 1}).identity
    assert base.identity != toy(output_range=[-1, 1]).identity
    weights = tmp_path / "g.pt"
    torch.save(ToyGenerator(**TOY["params"], init_seed=5).state_dict(), weights)
    loaded = toy(checkpoint=str(weights))
    assert loaded.checkpoint_sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert loaded.identity != base.identity
    z = torch.from_numpy(latents(0, range(3), 16))
    expected = ToyGenerator(**TOY["params"], init_seed=5)(z)
    assert torch.allclose(loaded.load("cpu").images(z), expected)  # the checkpoint's weights, not init_seed's


def test_checkpoints_never_unpickle_code(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": ToyGenerator(**TOY["params"]).state_dict(), "hook": Path("x")}, evil)
    torch.save({"config": ToyGenerator}, evil)  # a class inside: torch.load(weights_only=True) refuses it
    with pytest.raises(DsimError, match="holds Python objects besides tensors"):
        toy(checkpoint=str(evil)).load("cpu")
    other = tmp_path / "other.pt"
    torch.save(ToyGenerator(z_dim=8, w_dim=8, resolution=16).state_dict(), other)
    with pytest.raises(DsimError, match="does not fit"):
        toy(checkpoint=str(other)).load("cpu")


@pytest.mark.parametrize("node, message", [
    ({"name": "g"}, "generator._target_ is missing"),
    ({"name": "g", "_target_": "nowhere.Model"}, "cannot import nowhere"),
    ({**TOY, "checkpoint": "/no/such.pt"}, "no such file"),
    ({**TOY, "output_range": [1, 0]}, "low < high"),
    ({**TOY, "n_samples": 0}, "n_samples must be an integer >= 1"),
    ({"name": "flat", "_target_": "gen_models.flat"}, "latent size is unknown"),
])
def test_bad_generators_are_one_line(node, message):
    with pytest.raises(DsimError, match=message):
        GeneratorSpec.from_config(node).load("cpu")


def test_a_projects_own_models_follow_the_protocol():
    flat = GeneratorSpec.from_config({"name": "flat", "_target_": "gen_models.flat", "z_dim": 4}).load("cpu")
    images = flat.images(torch.zeros(2, 4))  # a function z -> uint8 N×H×W×C
    assert images.shape == (2, 3, 16, 16) and torch.allclose(images, torch.full_like(images, 128 / 255))
    signed = GeneratorSpec.from_config({"name": "signed", "_target_": "gen_models.Signed", "params": {"z_dim": 8},
                                        "output_range": [-1, 1]}).load("cpu")
    out = signed.images(torch.randn(5, 8))  # one channel in [-1.2, 1.2] → three in [0, 1], clamped
    assert out.shape == (5, 3, 16, 16) and out.min() == 0 and out.max() == 1
    assert torch.equal(out[:, 0], out[:, 2]) and not signed.has_mapping


def test_samples_are_byte_identical_and_independent_of_batch_size_and_n(tmp_path):
    first = generated_dataset(toy(), tmp_path / "a")
    again = generated_dataset(toy(batch_size=7), tmp_path / "b")
    assert len(digests(first)) == 40 and digests(first) == digests(again)
    assert first.name == samples_folder(toy(), tmp_path / "a", "cpu").name and first.name.startswith("toy-n40-seed0-")
    fewer = generated_dataset(toy(n_samples=10), tmp_path / "a")
    assert fewer != first and digests(fewer) == digests(first)[:10]
    assert digests(generated_dataset(toy(seed=1), tmp_path / "a")) != digests(first)
    pixels = load_rgb(first / "0000003.png")  # lossless: exactly the model's output, rounded to 8 bits
    model = toy().load("cpu")
    expected = (model.images(torch.from_numpy(latents(0, [3], 16)))[0] * 255).round().permute(1, 2, 0).numpy()
    assert np.array_equal(pixels, expected.astype(np.uint8))
    meta = json.loads((first / ".complete.json").read_text())
    assert meta["identity"] == toy().identity and meta["images"] == 40 and meta["device"] == "cpu"


def test_an_interrupted_folder_is_resumed_not_trusted(tmp_path):
    folder = generated_dataset(toy(), tmp_path)
    expected = digests(folder)
    (folder / ".complete.json").unlink()  # as if killed before the end
    for name in ("0000005.png", "0000031.png"):
        (folder / name).unlink()
    kept = (folder / "0000000.png").stat().st_mtime_ns
    assert generated_dataset(toy(), tmp_path) == folder
    assert digests(folder) == expected and (folder / "0000000.png").stat().st_mtime_ns == kept


def _make(cache):
    return str(generated_dataset(toy(n_samples=120), cache))


@pytest.mark.slow
def test_two_processes_make_one_folder(tmp_path):
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        made = pool.map(_make, [tmp_path / "cache"] * 2)
    assert made[0] == made[1] and len(list(Path(made[0]).glob("*.png"))) == 120
    assert len(list((tmp_path / "cache" / "generated").iterdir())) == 2  # the folder and its lock file


def test_a_cell_on_generated_samples_records_the_generator(tmp_path, crops):
    cfg = cell_config(tmp_path, ["extractor=pixels", "metric=kid_poly", "metric.params.subset_size=20",
                                 "generator=toy", "generator.n_samples=48", "pair.candidate=generator",
                                 f"pair.reference={crops['a']}"])
    record = run_cell(cfg, tmp_path / "job")
    assert record["candidate_name"] == "toy" and record["n_candidate"] == 48
    assert record["generator"]["identity"] == GeneratorSpec.from_config(cfg["generator"]).identity
    assert record["generator"]["target"] == "dsim.generators.toy.ToyGenerator"
    assert len(list_images(record["candidate"])) == 48 and record["values"]["kid_poly"] > 0
    from mlflow.tracking import MlflowClient

    run = MlflowClient(tracking_uri=tracking_uri(tmp_path)).get_run(record["mlflow_run_id"])
    assert run.data.tags["dsim.generator.identity"] == record["generator"]["identity"]


@pytest.mark.slow
def test_a_ppl_cell_drives_the_model_and_logs_every_path(tmp_path, crops):
    cfg = cell_config(tmp_path, ["metric=pplwfull", "generator.n_samples=12", "metric.params.resize=null",
                                 "metric.bootstrap=20",
                                 "metric.params.lpips_weights=random", "generator=toy", "pair.candidate=generator",
                                 f"pair.reference={crops['a']}"])
    record = run_cell(cfg, tmp_path / "job")
    values = record["values"]
    assert values["pplwfull"] > 0 and values["n_kept"] == 12
    assert values["pplwfull_ci_low"] <= values["pplwfull"] <= values["pplwfull_ci_high"]
    assert record["interval"]["method"].startswith("half-sampling") and record["interval"]["replicates"] == 20
    assert record["extractor"] == "lpips_vgg" and record["random_weights"] is True
    assert record["candidate_fingerprint"] == f"generator:{record['generator']['identity']}"
    assert not (tmp_path / "cache" / "generated").exists()  # PPL draws its own paths: no samples folder
    table = (tmp_path / "job" / "artifacts" / "per_image_candidate.csv").read_text().splitlines()
    assert table[0] == "path,t,path_length,kept" and len(table) == 13


@pytest.mark.slow
def test_cli_errors_name_the_fix(tmp_path):
    done = run_dsim("pair.candidate=generator", "progress=false", cwd=tmp_path, check=False)
    assert "needs a generator: add generator=toy" in one_line_error(done)
    done = run_dsim("metric=ppl", "progress=false", cwd=tmp_path, check=False)
    assert "set pair.candidate=generator" in one_line_error(done)
    done = run_dsim("generator=toy", "generator.output_range=[2,1]", cwd=tmp_path, check=False)
    assert "low < high" in one_line_error(done)


@pytest.mark.slow
def test_a_parallel_grid_on_one_generator_makes_its_samples_once(tmp_path, crops):
    """Two cells at once (joblib, 2 workers), both on the generator's 150 samples (more than a batch, workers on)."""
    shutil.copy(HERE / "gen_models.py", tmp_path)
    done = run_dsim("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "extractor=pixels",
                    "metric=fid,kid_poly", "generator=toy", "generator.n_samples=150", "pair.candidate=generator",
                    f"pair.reference={crops['a']}", "num_workers=2", "batch_size=32",
                    "progress=false", f"cache_dir={tmp_path / 'cache'}", f"tracking.store_dir={tmp_path / 'mlruns'}",
                    f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "sweep").rglob("result.json"))]
    assert len(records) == 2, done.stdout
    assert len({r["candidate_fingerprint"] for r in records}) == 1
    assert [p.name for p in (tmp_path / "cache" / "generated").iterdir() if p.is_dir()] == [Path(records[0]["candidate"]).name]
    assert sum(r["embedded"]["candidate"] for r in records) == 150  # embedded once for the grid
