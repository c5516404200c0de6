"""Generators as inputs (config group ``generator=``): evaluate a model, not only folders.

``generator=none`` (default) · ``generator=toy`` (:class:`~dsim.generators.toy.ToyGenerator`, seeded, for
tests and the demo) · a project's own ``conf/generator/NAME.yaml`` with ``_target_`` (a ``torch.nn.Module``
class or factory called with ``params``, or a function ``z -> images``), an optional ``checkpoint`` (a
state dict, read without unpickling code), ``z_dim`` (else the model's attribute) and ``output_range``.

A model maps N×z_dim standard-normal latents to N×C×H×W images (C = 1 or 3; uint8, or floats in
``output_range``); one with ``mapping(z) -> w`` and ``synthesis(w) -> images`` also has a w-space (PPL
``space=w``). ``pair.candidate=generator`` draws ``generator.n_samples`` images into a content-addressed
folder (:mod:`dsim.generators.samples`); ``metric=ppl`` (:mod:`dsim.metrics._ppl`) drives the model itself.
"""

from dsim.generators.samples import generated_dataset, latents, samples_folder
from dsim.generators.source import Generator, GeneratorSpec

#: ``pair.candidate`` value that means "the configured generator's samples"
CANDIDATE = "generator"

__all__ = ["CANDIDATE", "Generator", "GeneratorSpec", "generated_dataset", "latents", "samples_folder"]
