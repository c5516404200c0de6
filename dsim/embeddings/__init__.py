"""Feature vectors of datasets: embedding a folder through an extractor (:mod:`~dsim.embeddings.embed`),
the content-addressed vector store that caches them (:mod:`~dsim.embeddings.store`), embedding files
(:mod:`~dsim.embeddings.npz`), statistics files (:mod:`~dsim.embeddings.stats_files`) and per-image
entropy (:mod:`~dsim.embeddings.entropy`)."""
