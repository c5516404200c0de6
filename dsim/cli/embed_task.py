"""``task=embed``: one shard of one dataset's embedding, as a job of a sweep (Slurm, Ray, local).

``dsim -m task=embed task.dataset=DIR extractor=NAME task.shards=N 'task.shard=range(N)'`` runs N jobs; job
i embeds the images whose content hash falls in shard i (:func:`dsim.embeddings.embed.embed_shard`) into the
shared store, so a grid on that dataset afterwards does no forward pass. Each job writes ``embed.json``
(images of its shard, embedded now, skipped) in its job folder; the sweep's end sums them up.
"""

from __future__ import annotations

from pathlib import Path

from dsim.cell.context import resolve_dataset
from dsim.configs import CellConfig
from dsim.errors import DsimError
from dsim.records import EMBED_FILE, write_json


def run_embed_task(config: CellConfig, job_dir: Path) -> dict:
    """Embed the shard ``config.task`` names; write and return its summary."""
    from dsim.embeddings.embed import embed_shard
    from dsim.extractors import from_config

    task = config.task
    if not task.dataset:
        raise DsimError("task=embed needs task.dataset=NAME_OR_FOLDER (a catalogue name or an image folder)")
    dataset = resolve_dataset(task.dataset, config.dataset)
    summary = embed_shard(
        dataset.path,
        from_config(config.extractor.node),
        shard=task.shard,
        shards=task.shards,
        settings=config.embedding,
    )
    summary["name"] = dataset.name
    write_json(Path(job_dir) / EMBED_FILE, summary)
    return summary
