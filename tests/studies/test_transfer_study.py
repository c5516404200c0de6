"""The transfer study (dsim.studies.transfer, ``task=transfer_study``): the segmenter's F-score, its training,
and the whole study through its one command on generated crack images (the real-photo run is a benchmark:
docs/guides/studies.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dsim_testing import one_line_error, run_dsim
from mlflow.tracking import MlflowClient
from PIL import Image, ImageDraw
from scipy import ndimage

from dsim.studies.transfer import segmenter as sg
from dsim.studies.transfer.study import mean_interval, summarise


def test_f_score_matches_cases_computed_by_hand():
    truth = np.zeros((10, 10), bool)
    truth[5, 2:8] = True  # a 6-pixel crack
    assert sg.f_score(truth, truth) == 1.0
    shifted = np.roll(truth, 1, axis=0)  # one pixel off: within the tolerance
    assert sg.f_score(shifted, truth, tolerance=1) == 1.0 and sg.f_score(shifted, truth, tolerance=0) == 0.0
    half = truth.copy()
    half[5, 5:8] = False  # 3 of 6 found, all right: precision 1, recall 4/6 (one more within 1 px)
    assert sg.f_score(half, truth, tolerance=1) == pytest.approx(2 * 1 * (4 / 6) / (1 + 4 / 6))
    noise = np.zeros_like(truth)
    noise[0, 0] = True  # one wrong pixel beside the crack: precision 6/7, recall 1
    assert sg.f_score(truth | noise, truth) == pytest.approx(2 * (6 / 7) / (6 / 7 + 1))
    assert sg.f_score(np.zeros_like(truth), np.zeros_like(truth)) == 1.0
    assert sg.f_score(noise, np.zeros_like(truth)) == 0.0 and sg.f_score(np.zeros_like(truth), truth) == 0.0


def test_newton_logistic_regression_is_the_penalised_maximum_likelihood():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(size=(400, 2)), np.ones(400)])
    y = (x[:, 0] - 0.5 * x[:, 1] + rng.logistic(size=400) > 0).astype(float)
    w = rng.uniform(0.5, 2, 400)
    beta = sg.newton_logistic(x, y, w, l2=1.0)
    p = 1 / (1 + np.exp(-x @ beta))
    gradient = x.T @ (w * (p - y)) + np.array([1.0, 1.0, 0.0]) * beta  # zero at the optimum
    assert np.abs(gradient).max() < 1e-8 and beta[0] > 0 > beta[1]


def write_cracks(folder: Path, masks: Path, n: int, seed: int, *, texture: float, contrast: float) -> None:
    """``n`` 128×128 grey images: a smooth random texture crossed by 1–2 dark polylines, with their masks."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    masks.mkdir(parents=True)
    for i in range(n):
        background = 0.6 + texture * ndimage.gaussian_filter(rng.normal(size=(128, 128)), 2) * 4
        mask = Image.new("L", (128, 128))
        draw = ImageDraw.Draw(mask)
        for _ in range(int(rng.integers(1, 3))):
            points = [tuple(int(v) for v in rng.integers(0, 128, 2)) for _ in range(4)]
            draw.line(points, fill=255, width=int(rng.integers(2, 4)))
        crack = np.asarray(mask) > 0
        grey = np.clip(background - contrast * crack, 0, 1)
        Image.fromarray((grey * 255).astype(np.uint8)).convert("RGB").save(folder / f"{i:03d}.png")
        mask.save(masks / f"{i:03d}.png")


def test_the_segmenter_learns_cracks_and_loses_some_on_another_texture(tmp_path):
    write_cracks(tmp_path / "p", tmp_path / "pm", 30, 1, texture=0.02, contrast=0.4)
    write_cracks(tmp_path / "s", tmp_path / "sm", 20, 2, texture=0.08, contrast=0.25)
    load = lambda d, m: [sg.Example.load(p, tmp_path / m / p.name) for p in sorted((tmp_path / d).iterdir())]  # noqa: E731
    p_examples, s_examples = load("p", "pm"), load("s", "sm")
    model = sg.train(p_examples, seed=0)
    on_p, on_s = np.mean(list(sg.scores(model, p_examples).values())), np.mean(list(sg.scores(model, s_examples).values()))
    assert on_p > 0.8 and on_s < on_p
    adapted = sg.train(p_examples + s_examples[:5], weights=[1.0] * 30 + [6.0] * 5, seed=0)
    assert np.mean(list(sg.scores(adapted, s_examples[5:]).values())) > np.mean(
        [sg.scores(model, s_examples)[e.name] for e in s_examples[5:]])


def test_mean_interval_holds_the_mean():
    values = np.random.default_rng(3).uniform(size=60)
    low, high = mean_interval(values, replicates=200, seed=0)
    assert low < values.mean() < high and high - low < 0.3


def test_summarise_compares_gains_with_random_seed_by_seed():
    adapted = pd.DataFrame([
        {"strategy": s, "seed": seed, "q": 1, "f_rest": f, "baseline_f_rest": 0.5, "gain": f - 0.5, "slope": -0.1}
        for s, seed, f in [("band", 0, 0.7), ("band", 1, 0.6), ("random", 0, 0.6), ("random", 1, 0.65)]
    ])
    row = summarise(adapted).set_index("strategy").loc["band"]
    assert row["gain_mean"] == pytest.approx(0.15) and row["vs_random_mean"] == pytest.approx(0.025)
    assert row["vs_random_seeds_above"] == 1


def _study_args(tmp_path: Path, *more: str) -> list[str]:
    return [
        "extractor=pixels", f"task.train={tmp_path / 'p'}", f"task.train_masks={tmp_path / 'pm'}",
        f"task.pool={tmp_path / 's'}", f"task.pool_masks={tmp_path / 'sm'}", f"task.far=[{tmp_path / 'far'}]",
        "task.q=[1,3]", "task.seeds=2", "task.band=[0.3,1.0]", "task.bootstrap=50", "progress=false",
        f"cache_dir={tmp_path / 'cache'}", f"tracking.store_dir={tmp_path / 'mlruns'}", "num_workers=2", *more,
    ]


@pytest.fixture(scope="module")
def crack_sets(tmp_path_factory) -> Path:
    """P: 40 low-texture crack images (more than one batch of 32, so the loader's two workers start); S: 36 on
    a rougher texture; a far domain of 34 crack-free images."""
    root = tmp_path_factory.mktemp("cracks")
    write_cracks(root / "p", root / "pm", 40, 1, texture=0.02, contrast=0.4)
    write_cracks(root / "s", root / "sm", 36, 2, texture=0.08, contrast=0.25)
    write_cracks(root / "far", root / "farm", 34, 3, texture=0.2, contrast=0.0)
    return root


@pytest.mark.slow
def test_the_study_is_one_command_end_to_end(crack_sets):
    """``dsim -m experiment=transfer_study`` with the sets overridden: every strategy x seed x q is trained and
    scored, the files are written, the sweep's end prints the summary, one MLflow run holds the numbers and the
    three datasets as inputs, a child of the sweep's parent."""
    done = run_dsim("-m", "experiment=transfer_study", *_study_args(crack_sets, "hydra.sweep.dir=sweep"),
                    cwd=crack_sets)
    out = crack_sets / "sweep" / "0"
    adapted = pd.read_csv(out / "adapted.csv")
    assert len(adapted) == 3 * 2 * 2 and (adapted["n_rest"] == 36 - adapted["q"]).all()
    assert (adapted["f_rest_ci_low"] <= adapted["f_rest"]).all() and (adapted["f_rest"] <= adapted["f_rest_ci_high"]).all()
    baseline = pd.read_csv(out / "baseline.csv")
    assert len(baseline) == 36 and baseline["scaled"].max() == 1 and baseline["scaled"].min() == 0
    study = json.loads((out / "study.json").read_text())
    assert study["f_vs_i_dist"]["n"] == 36 and study["train"]["f_score_mean"] > study["pool"]["f_score_mean"]
    assert [d["domain"] for d in study["domains"]] == ["s", "far"] and study["tracking"] == "logged"
    assert (out / "study.png").stat().st_size > 5000
    assert "transfer study (pixels)" in done.stdout and "kcenter" in done.stdout and "vs_random_mean" in done.stdout

    client = MlflowClient(tracking_uri=f"sqlite:///{crack_sets / 'mlruns' / 'mlflow.db'}")
    run = client.get_run(study["mlflow_run_id"])
    assert run.data.metrics["pool_f_score"] == pytest.approx(study["pool"]["f_score_mean"])
    assert run.data.metrics["kcenter.q1.gain"] == pytest.approx(
        adapted.query("strategy == 'kcenter' and q == 1")["gain"].mean())
    assert "mlflow.parentRunId" in run.data.tags and run.data.tags["dsim.study"] == "transfer"
    inputs = {d.dataset.name: json.loads(d.dataset.profile)["fingerprint"] for d in run.inputs.dataset_inputs}
    assert inputs == {"p": study["train"]["fingerprint"], "s": study["pool"]["fingerprint"],
                      "far": study["domains"][1]["fingerprint"]}  # (MLflow keeps a digest's first 32 digits)
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"adapted.csv", "summary.csv", "study.png"}


@pytest.mark.slow
def test_bad_study_inputs_stop_with_one_line_before_any_work(crack_sets, tmp_path):
    missing = run_dsim("task=transfer_study", *_study_args(crack_sets, "task.pool_masks=/nonexistent/masks"),
                       cwd=tmp_path, check=False)
    assert "task.pool_masks: /nonexistent/masks is not a folder" in one_line_error(missing)
    unset = run_dsim("task=transfer_study", "extractor=pixels", cwd=tmp_path, check=False)
    assert "needs task.train=FOLDER" in one_line_error(unset)
    wrong = run_dsim("task=transfer_study", *_study_args(crack_sets, "task.strategies=[band,greedy]"),
                     cwd=tmp_path, check=False)
    assert "task.strategies must be a list of band, kcenter, random" in one_line_error(wrong)
    masks = tmp_path / "small_masks"
    masks.mkdir()
    for mask in sorted((crack_sets / "sm").iterdir())[:3]:
        Image.open(mask).resize((64, 64)).save(masks / mask.name)
    resized = run_dsim("task=transfer_study", *_study_args(crack_sets, f"task.pool_masks={masks}"),
                       cwd=tmp_path, check=False)
    assert "is 64x64 but its image" in one_line_error(resized)
    assert not list(tmp_path.rglob("study.json"))
