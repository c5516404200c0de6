"""Everything a cell checks and resolves before any work: :func:`prepare` a config into a :class:`CellPlan`.

It is the only way into the runners: :func:`dsim.pipeline.run_cell` (the CLI's cell) is prepare → run →
record → submit, :func:`dsim.compare` is prepare → run, so every one-line error the CLI gives for a config
``compare`` raises as the same :class:`~dsim.errors.DsimError`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from dsim import configs, metrics
from dsim.analysis import transfer, visual
from dsim.cell import distribution, generated, paired
from dsim.cell.context import CellOutput, DatasetRef, pair_name, resolve_dataset
from dsim.configs import CellConfig
from dsim.data.images import resolve_dataset_dir
from dsim.errors import DsimError
from dsim.util.fileio import ensure_dir

#: metric kind → runner module with ``run(config, spec, params, reference, candidate) -> CellOutput``
RUNNERS = {"distribution": distribution, "paired": paired, "generator": generated}


@dataclass(frozen=True)
class CellPlan:
    """A checked cell: its typed config, the metric's declaration and checked parameters, both sides resolved
    (the candidate generated and perturbed when the config says so) and the pair's name as configured."""

    config: CellConfig
    spec: metrics.MetricSpec
    params: dict
    reference: DatasetRef
    candidate: DatasetRef
    pair: str


def check(
    cfg: CellConfig | Mapping, choices: dict | None = None, conf_dirs=None, *, owned=()
) -> tuple[CellConfig, metrics.MetricSpec, dict]:
    """The typed config (a resolved ``dict`` is checked against its files first, see :func:`dsim.configs.load`;
    ``owned`` as there), the metric's declaration and its checked parameters (no file is read)."""
    config = cfg if isinstance(cfg, CellConfig) else configs.load(cfg, choices, conf_dirs, owned=owned)
    spec = metrics.lookup(config.metric.name, config.metric.node)
    return config, spec, metrics.check_params(spec, dict(config.metric.params))  # one check, every kind


def prepare(cfg: CellConfig | Mapping, choices: dict | None = None, conf_dirs=None, *, owned=()) -> CellPlan:
    """Check ``cfg`` (a :class:`CellConfig`, or a resolved ``dict``: ``choices`` are Hydra's group choices,
    ``conf_dirs`` its config folders, ``owned`` as in :func:`dsim.configs.check`) and resolve both sides:
    folders, catalogue names, statistics files, a generator's samples, a perturbation. One-line
    :class:`DsimError` s for every mistake, before any embedding or metric work."""
    config, spec, params = check(cfg, choices, conf_dirs, owned=owned)
    ensure_dir(config.cache_dir, "cache_dir")
    visual.check(config)  # the analyses' own files and folders, before the cell's work
    transfer.check(config)
    reference = resolve_dataset(config.pair.reference, config.dataset)
    candidate = generated_candidate(config, spec) or resolve_dataset(config.pair.candidate, config.dataset)
    if spec.kind == "generator" and candidate.generator is None:
        raise DsimError(
            f"metric={spec.name} evaluates a generator: set pair.candidate=generator and "
            "generator=toy (or your own conf/generator/NAME.yaml)"
        )
    if candidate.stats is not None:
        raise DsimError(f"pair.candidate={candidate.path}: a statistics file can stand in for the reference only")
    if config.metric.floor:
        metrics.check_floor(spec)
        if reference.stats is not None:
            raise DsimError(
                f"metric.floor splits the reference's images into two halves; pair.reference={reference.path} is "
                "a statistics file (mean and covariance only): give the reference folder, or set metric.floor=false"
            )
    if reference.stats is not None and (
        spec.from_stats is None or config.metric.bootstrap or params.get("max_samples") is not None
    ):
        takes = ", ".join(sorted(name for name, s in metrics.METRICS.items() if s.from_stats is not None))
        raise DsimError(
            f"pair.reference={reference.path} is a statistics file (N, mean, covariance): metric="
            f"{spec.name} needs the features themselves (and intervals need them too); metrics that "
            f"take statistics: {takes}"
        )
    for ref in (reference, candidate):
        if ref.stats is None and (spec.kind != "generator" or ref.generator is None):  # PPL drives the model
            resolve_dataset_dir(ref.path)  # both folders exist before any work starts
    pair = pair_name(config.pair, reference, candidate)  # the pair as configured, perturbed or not
    return CellPlan(config, spec, params, reference, perturbed_candidate(config, candidate), pair)


def run(plan: CellPlan) -> CellOutput:
    """The metric's runner on the plan's two sides."""
    return RUNNERS[plan.spec.kind].run(plan.config, plan.spec, plan.params, plan.reference, plan.candidate)


def generated_candidate(config: CellConfig, spec) -> DatasetRef | None:
    """``pair.candidate=generator``: the configured generator's samples folder (made now, once), or for a
    metric that drives the model itself (``kind="generator"``: PPL) the generator alone; else ``None``."""
    from dsim.embeddings.embed import resolve_device
    from dsim.generators import CANDIDATE, GeneratorSpec, generated_dataset, samples_folder

    if config.pair.candidate != CANDIDATE:
        return None
    generator = GeneratorSpec.from_config(config.generator.node)
    if not generator.active:
        raise DsimError(
            "pair.candidate=generator needs a generator: add generator=toy (or your own "
            "conf/generator/NAME.yaml with _target_)"
        )
    device = resolve_device(config.device)
    if spec.kind == "generator":
        return DatasetRef(generator.name, samples_folder(generator, config.cache_dir, device.type), generator)
    folder = generated_dataset(generator, config.cache_dir, device=str(device), progress=config.progress)
    return DatasetRef(generator.name, folder, generator)


def perturbed_candidate(config: CellConfig, candidate: DatasetRef) -> DatasetRef:
    """The candidate as the cell sees it: under ``perturb=``, the folder of its perturbed images
    (:mod:`dsim.data.perturb`), named ``<name>+<perturbation>``; else itself."""
    from dsim.data.perturb import Perturbation, perturbed_dataset

    spec = Perturbation.from_config(dataclasses.asdict(config.perturb))
    if not spec.active:
        return candidate
    folder = perturbed_dataset(
        candidate.path, spec, config.cache_dir, on_error=config.dataset.on_error, progress=config.progress
    )
    return DatasetRef(f"{candidate.name}+{spec.label()}", folder, candidate.generator)
