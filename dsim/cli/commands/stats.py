"""``dsim stats``: save a dataset's feature statistics (N, mean, covariance, provenance) to an ``.npz`` file.

The file stands in for the dataset wherever a reference is given (``pair.reference=ref.npz``, or
``dsim.compare("ref.npz", folder, metrics=("fid",))``) for the metrics that need only statistics (FID).
"""

from __future__ import annotations

from dsim.cli.commands.embed import dataset_parser


def run(argv: list[str]) -> None:
    from dsim.embeddings.stats_files import dataset_stats, save_stats
    from dsim.extractors import build

    parser = dataset_parser("dsim stats", __doc__.splitlines()[0].split(": ", 1)[1])
    args = parser.parse_args(argv)
    if not args.out.endswith(".npz"):
        parser.error("--out must end in .npz")
    extractor = build(args.extractor, weights=args.weights or "default")
    stats, embeddings = dataset_stats(
        args.dataset,
        extractor,
        device=args.device,
        batch_size=args.batch_size,
        cache_dir=args.cache_dir,
        on_error=args.on_error,
    )
    save_stats(
        args.out,
        stats,
        extractor=extractor,
        fingerprint=embeddings.fingerprint,
        root=embeddings.root,
        skipped=len(embeddings.skipped),
    )
    print(
        f"{args.out}: {stats.n} images x {stats.dim} dims through {extractor.name} "
        f"(identity {extractor.identity[:12]}; {embeddings.n_computed} embedded now)"
    )
