"""Train/test split of a map file (the file itself: contracts/dictionary.py)."""
import numpy as np


def split(n: int, seed: int, test_fraction: float, folds: int):
    """Seeded split: (test indices, list of `folds` disjoint train-validation parts)."""
    perm = np.random.default_rng([seed, 7919]).permutation(n)
    n_test = int(round(test_fraction * n))
    return perm[:n_test], np.array_split(perm[n_test:], max(folds, 1))
