"""Image datasets as files: listing and decoding (:mod:`~dsim.data.images`), the content-hash memo
(:mod:`~dsim.data.hash_memo`), folders derived from others once and reused (:mod:`~dsim.data.derived`,
:mod:`~dsim.data.perturb`), DVC lineage (:mod:`~dsim.data.dvc`,
:mod:`~dsim.data.lineage`) and the embedded default datasets (:mod:`~dsim.data.samples`,
:mod:`~dsim.data.renders`)."""
