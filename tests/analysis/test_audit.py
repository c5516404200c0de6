"""``dsim audit``: its points, its properties computed by hand, bad input, and a real run on photos."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dsim_testing import one_line_error, run_dsim, write_crops
from PIL import Image
from scipy.stats import kendalltau, spearmanr

from dsim.analysis import audit
from dsim.cli.commands.audit import audit_points, set_names


def _record(extractor: str, pair: str, values: dict, metric: str = "fid") -> dict:
    return {"extractor": extractor, "metric": metric, "pair": pair, "values": values,
            "value_roles": {metric: "headline"}, "reference": "r", "candidate": "c"}


def _floored(value_at: float, floor: float = 10.0) -> dict:
    return {"fid": value_at, "fid_floor": floor, "fid_floor_ci_low": floor * 0.8, "fid_floor_ci_high": floor * 1.3,
            "fid_at_floor_n": value_at, "fid_over_floor": value_at / floor}


def test_points_cover_every_degradation_strength_set_and_order():
    points = audit_points(Path("/r"), [Path("/a"), Path("/b")], ["blur", "brightness"])
    pairs = [p["pair"]["name"] for p in points.values()]
    graded = len(audit.DEGRADATIONS["blur"].strengths) + len(audit.DEGRADATIONS["brightness"].strengths)
    assert len(pairs) == graded + 2 + 2 * (1 + graded) == len(set(pairs))
    blur2 = next(p for p in points.values() if p["pair"]["name"] == "degraded@blur@2")
    assert blur2["defaults"] == [{"override /perturb": "blur"}] and blur2["perturb"] == {"strength": 2.0}
    assert blur2["pair"]["reference"] == blur2["pair"]["candidate"] == "/r" and blur2["metric"]["floor"] is True
    order = next(p for p in points.values() if p["pair"]["name"] == "order@1@brightness@0.7")
    assert order["pair"]["reference"] == "/b" and order["metric"]["floor"] is False  # ranking needs no floor
    assert not any(p["pair"]["name"].startswith("order") for p in audit_points(Path("/r"), [Path("/a")], ["blur"]).values())
    assert set_names([Path("/x/cfd"), Path("/y/cfd"), Path("/z/mars")]) == ["x_cfd", "y_cfd", "mars"]


def test_the_properties_are_slopes_ranks_and_taus_computed_by_hand():
    strengths = audit.DEGRADATIONS["blur"].strengths
    records = []
    for extractor, rise in (("sharp", 3.0), ("blind", 0.0)):
        for k, s in enumerate(strengths):
            records.append(_record(extractor, f"degraded@blur@{s:g}", _floored(10.0 * (1 + rise * s) + k)))
        for s in audit.DEGRADATIONS["brightness"].strengths:
            records.append(_record(extractor, f"degraded@brightness@{s:g}", _floored(10.0 + 100 * abs(s - 1))))
        records += [_record(extractor, "separation@0", _floored(50.0)), _record(extractor, "separation@1", _floored(90.0))]
        before = {"0": 5.0, "1": 9.0}
        records += [_record(extractor, f"order@{j}", {"fid": v}) for j, v in before.items()]
        for s in strengths:  # 'blind' swaps the two sets' order at every strength, 'sharp' keeps it
            after = before if extractor == "sharp" else {"0": 9.0, "1": 5.0}
            records += [_record(extractor, f"order@{j}@blur@{s:g}", {"fid": v}) for j, v in after.items()]
    cells = audit.cell_frame(records)
    cells["set"] = cells["set"].map({"0": "near", "1": "far", None: None})
    table = audit.audit_table(cells, ["near", "far"], ["blur", "brightness"]).set_index("extractor")
    x = np.array(strengths)
    y = np.array([(10.0 * (1 + 3.0 * s) + k) / 10.0 for k, s in enumerate(strengths)])
    assert table.loc["sharp", "sensitivity_blur"] == pytest.approx(np.polyfit(x, y, 1)[0], rel=1e-12)
    assert table.loc["sharp", "monotonicity_blur"] == pytest.approx(spearmanr(x, y).statistic)
    assert table.loc["sharp", "nuisance_brightness"] == pytest.approx((10 + 30) / 10, rel=1e-12)  # 0.7 and 1.3
    assert table.loc["sharp", "separation_far"] == pytest.approx(9.0)
    assert table.loc["sharp", "rank_stability_blur"] == 1.0
    assert table.loc["blind", "rank_stability_blur"] == pytest.approx(kendalltau([5, 9], [9, 5]).statistic) == -1.0
    assert table.loc["sharp", "interval_width"] == pytest.approx(0.5)
    assert list(table.index) == ["sharp", "blind"]  # ranked by sensitivity
    text = audit.recommendation(table.reset_index(), "photos", ["blur", "brightness"], ["near", "far"])
    assert "1. sharp × fid: most sensitive to blur" in text and "separates near by 5, far by 9 floor units" in text


def test_floor_units_of_a_higher_is_better_value_and_of_an_unbiased_one():
    assert audit.floor_units({"precision_at_floor_n": 0.2, "precision_floor": 0.8}, "precision", True) == 4.0
    kid = {"kid_at_floor_n": 0.3, "kid_floor": 0.001, "kid_floor_ci_high": 0.05, "kid_over_floor": math.nan}
    assert audit.floor_units(kid, "kid", False) == pytest.approx(6.0)  # against the floor's upper end


@pytest.mark.parametrize("args, message", [
    (["/nonexistent/ref"], "/nonexistent/ref"),
    (["REF", "--degradations", "blur,smudge"], "unknown degradation(s) smudge"),
    (["REF", "--metrics", "isc"], "scores the candidate set alone"),
    (["REF", "--metrics", "psnr"], "is a paired metric"),
    (["REF", "--against", "REF"], "is REF and also an --against set"),
])
def test_bad_input_is_one_line(tmp_path, crops, args, message):
    args = [str(crops["a"]) if a == "REF" else a for a in args]
    done = run_dsim("audit", *args, "--out", str(tmp_path / "out"), cwd=tmp_path, check=False)
    assert message in one_line_error(done)


def _photos(folder: Path, n: int, seed: int, jpeg: int | None = None) -> Path:
    write_crops(folder, n, seed=seed, size=128)
    if jpeg is not None:
        for path in folder.glob("*.png"):
            Image.open(path).save(path.with_suffix(".jpg"), quality=jpeg)
            path.unlink()
    return folder


@pytest.mark.slow
def test_an_audit_on_real_photos_ranks_pixels_below_efficientnet_on_blur(tmp_path):
    """The README's observation as a test: at 128 px, the 16x16 pixels baseline cannot see a blur that moves
    EfficientNet-Lite0's FID by many noise floors. Real photos (scikit-image's), 48 a set (more than a batch,
    decode workers on), two known-different sets for separation and rank stability, cells in parallel under
    the joblib launcher (they share the perturbed folders); one MLflow parent run."""
    reference = _photos(tmp_path / "ref", 48, seed=0)
    near = _photos(tmp_path / "near", 48, seed=1)
    far = _photos(tmp_path / "far", 48, seed=2, jpeg=3)
    done = run_dsim("audit", str(reference), "--against", str(near), str(far), "--extractors",
                    "pixels,efficientnet_lite0", "--metrics", "fid", "--degradations", "blur", "--out", "audit",
                    "--", "hydra/launcher=joblib", "batch_size=16", "num_workers=2", "progress=false", "device=cpu",
                    cwd=tmp_path)
    table = pd.read_csv(tmp_path / "audit" / "audit.csv").set_index("extractor")
    assert table.loc["efficientnet_lite0", "sensitivity_blur"] > max(0.0, table.loc["pixels", "sensitivity_blur"])
    assert table.loc["efficientnet_lite0", "monotonicity_blur"] >= 0.8
    assert table.loc["efficientnet_lite0", "separation_far"] > table.loc["efficientnet_lite0", "separation_near"]
    assert {"rank_stability_blur", "interval_width", "sensitivity_rank"} <= set(table.columns)
    assert list(table.index)[0] == "efficientnet_lite0"
    text = (tmp_path / "audit" / "recommendation.txt").read_text()
    assert text.splitlines()[1].startswith("1. efficientnet_lite0 × fid: most sensitive to blur")
    assert "1. efficientnet_lite0 × fid" in done.stdout
    for plot in ("sensitivity", "monotonicity", "separation", "rank_stability"):
        assert (tmp_path / "audit" / f"{plot}.png").stat().st_size > 1000
    records = [json.loads(p.read_text()) for p in (tmp_path / "audit" / "sweep").glob("*/result.json")]
    assert len(records) == 2 * (4 + 2 + 2 * 5)  # extractors x (blur points, separations, orders)
    degraded = [r for r in records if r["pair"].startswith("degraded@") and r["extractor"] == "efficientnet_lite0"]
    assert all(r["config"]["perturb.name"] == "blur" and "fid_over_floor" in r["values"] for r in degraded)

    from mlflow.tracking import MlflowClient

    from dsim.tracking.queue import parent_run_id

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    parent = parent_run_id(tmp_path / "audit" / "sweep")
    files = [f.path for f in client.list_artifacts(parent, "audit")]
    assert "audit/audit.csv" in files and "audit/recommendation.txt" in files
    assert client.get_run(parent).data.metrics["audit.efficientnet_lite0.fid.sensitivity_blur"] == pytest.approx(
        table.loc["efficientnet_lite0", "sensitivity_blur"])


def test_a_config_dir_of_its_own_keeps_the_project_s_conf(tmp_path):
    """The audit sweeps with --config-dir (its points); in a project (a conf/ of its own, as dsim init makes),
    Hydra, which takes one --config-dir, must still find the project's groups."""
    (tmp_path / "conf" / "pair").mkdir(parents=True)
    (tmp_path / "conf" / "pair" / "mine.yaml").write_text("name: null\nreference: from_project\ncandidate: b\n")
    (tmp_path / "points" / "experiment").mkdir(parents=True)
    (tmp_path / "points" / "experiment" / "point.yaml").write_text("# @package _global_\nmetric:\n  floor: true\n")
    done = run_dsim(f"--config-dir={tmp_path / 'points'}", "experiment=point", "pair=mine", "--cfg=job",
                    cwd=tmp_path)
    assert "reference: from_project" in done.stdout and "floor: true" in done.stdout
