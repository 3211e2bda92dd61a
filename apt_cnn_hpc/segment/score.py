"""Scoring against ground truth: per-ion precision/recall/F1 of "inside L1_2", and the oracle."""
import numpy as np

from ..sdm import VoxelGrid
from .voxels import ion_labels


def prf(pred, truth) -> dict:
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    tp = float(np.sum(pred & truth))
    p = tp / max(pred.sum(), 1)
    r = tp / max(truth.sum(), 1)
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def oracle_labels(xyz, truth, grid: VoxelGrid) -> np.ndarray:
    """Every voxel labelled by the majority truth of its own ions: the best any map of these
    voxels can do under the specimen's position noise."""
    v = grid.index(np.asarray(xyz, np.float64))
    ok = np.all((v >= 0) & (v < np.asarray(grid.shape)), axis=1)
    inside = np.zeros(grid.shape)
    total = np.zeros(grid.shape)
    np.add.at(total, tuple(v[ok].T), 1)
    np.add.at(inside, tuple(v[ok].T), np.asarray(truth, float)[ok])
    return ion_labels(xyz, grid, inside > total / 2)
