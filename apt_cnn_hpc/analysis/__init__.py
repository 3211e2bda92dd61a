"""The analyses of a precipitate study, per recognition method, from its per-ion result: proxigram,
size distribution, number density and volume fraction, phase compositions (one module each;
`run.analyse` computes them all, contracts/analyses.py stores them beside the segmentation)."""
