"""Labelled map files (the dictionary of `simulate`, the extracts of `extract`): checks and shards."""
import json
import os

import h5py
import numpy as np

from ..errors import InputError
from ..sdm import SDMSettings

SCHEMAS = ("apt-cnn-hpc/dictionary/1", "apt-cnn-hpc/extract/1")


def open_maps(path):
    """Open a map file and check its schema; returns (h5py.File, SDMSettings, n)."""
    if not os.path.isfile(path):
        raise InputError(path, "file not found")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise InputError(path, "not an HDF5 file") from None
    try:
        if f.attrs.get("schema") not in SCHEMAS or "maps" not in f or "labels" not in f:
            raise InputError(path, f"not an apt-cnn map file (schema {f.attrs.get('schema')!r}, "
                                   "needs /maps and /labels)")
        maps, labels = f["maps"], f["labels"]
        if maps.ndim != 3 or maps.dtype != np.uint8 or labels.shape != (maps.shape[0],):
            raise InputError(path, f"/maps must be uint8 [N, bins, bins] with /labels [N]; "
                                   f"got {maps.shape} {maps.dtype} and {labels.shape}")
        settings = SDMSettings.from_dict(json.loads(f.attrs["sdm_settings"]), path)
        if maps.shape[0] == 0:
            raise InputError(path, "contains no maps")
        if settings.map_bins != maps.shape[1]:
            raise InputError(path, f"maps are {maps.shape[1]} bins wide but sdm_settings say {settings.map_bins}")
    except InputError:
        f.close()
        raise
    except (KeyError, ValueError) as exc:
        f.close()
        raise InputError(path, f"malformed map file ({exc})") from None
    return f, settings, maps.shape[0]


def read_rows(f, idx: np.ndarray):
    """Maps and labels of rows `idx` (any order), read in increasing order as HDF5 wants."""
    idx = np.asarray(idx, np.int64)
    order = np.argsort(idx)
    maps = np.empty((len(idx),) + f["maps"].shape[1:], np.uint8)
    labels = np.empty(len(idx), np.uint8)
    if len(idx):
        maps[order] = f["maps"][idx[order]]
        labels[order] = f["labels"][idx[order]]
    return maps, labels


def split(n: int, seed: int, test_fraction: float, folds: int):
    """Seeded split: (test indices, list of `folds` disjoint train-validation parts)."""
    perm = np.random.default_rng([seed, 7919]).permutation(n)
    n_test = int(round(test_fraction * n))
    return perm[:n_test], np.array_split(perm[n_test:], max(folds, 1))
