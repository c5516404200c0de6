"""The dataset-distance paper's transfer study (issue 27): a crack segmenter trained on P, scored on S by
F-score, F against I_dist, and adaptation with images chosen by ``dsim select``'s strategies."""
