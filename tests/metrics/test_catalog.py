"""The metric configs, docstring list and docs table (docs/reference/metrics.md) are renderings of the declarations (no drift), and
every declared parameter composes and is checked."""

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from dsim.cli.app import CONF_DIR, group_choices
from dsim.errors import DsimError
from dsim.metrics import METRICS, check_params, register
from dsim.metrics.catalog import rendered_files

FIX = "run `python -m dsim.metrics.catalog --write` and commit the result"


@pytest.mark.parametrize("path", sorted(rendered_files()), ids=lambda path: path.name)
def test_rendered_files_match_the_declarations(path):
    assert path.read_text() == rendered_files()[path], f"{path} disagrees with the metric declarations: {FIX}"


def test_every_metric_config_is_a_registered_metric():
    assert sorted(group_choices("metric")) == sorted(METRICS)


def _compose(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_every_parameter_is_settable_without_plus_and_checked(name):
    spec = METRICS[name]
    for param in (*spec.params, *spec.cell_params):
        text = param.constraint is not None and "string" in param.constraint.text
        value = param.default if param.default is not None else ("labels.csv" if text else 2)
        override = f"metric.params.{param.name}=" + (
            "[" + ",".join(map(str, value)) + "]" if isinstance(value, tuple) else str(value))
        cfg = _compose([f"metric={name}", override])  # composes: the key exists in the config
        params = check_params(spec, OmegaConf.to_container(cfg.metric.params))
        assert params[param.name] == value or param.default is None
        if param.constraint is not None:
            with pytest.raises(DsimError, match=rf"{name}: {param.name} must be"):
                check_params(spec, {param.name: "not-a-value" if not isinstance(value, str) else ""})


def test_a_declaration_cannot_name_a_parameter_its_function_lacks():
    def gap(reference, candidate, *, scale: float = 1.0):
        """Mean gap."""

    with pytest.raises(ValueError, match=r"declared parameter\(s\) \['sigma'\] are not keyword-only"):
        register("gap_test_metric", gap, higher_is_better=False, params={"sigma": ("bandwidth", None)})
    assert "gap_test_metric" not in METRICS


def test_value_roles_drive_the_headline():
    assert METRICS["prdc"].headline() == ["precision", "recall", "density", "coverage"]
    assert METRICS["kid_poly"].role("kid_poly_std") == "spread"
    assert METRICS["kid_poly"].role("kid_poly_ci_low") == "interval"
    assert METRICS["psnr"].role("n_pairs") == "count" and METRICS["isc"].role("isc_reference") == "detail"
