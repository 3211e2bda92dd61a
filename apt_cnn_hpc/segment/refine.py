"""Sharper boundaries: a bounded least-squares deconvolution of cube probabilities into voxel labels.

Each evaluated cube's probability is turned into an estimate of its L1_2 volume share through the
model's measured response (model card: median probability against L1_2 share on held-out
specimens, inverted in logit space). A cube's share is the mean of its 64 voxel labels, so the
labels l in [0, 1] near a boundary of the plain rule solve  min || A l - share ||^2 ; voxels
further than `band_voxels` from that boundary keep the plain rule's label.
"""
import numpy as np
from scipy import ndimage, sparse
from scipy.optimize import lsq_linear

from ..errors import InputError
from ..model.cnn import logit


def share_from_probability(prob: np.ndarray, response: dict) -> np.ndarray:
    """Invert the model's response curve (monotone envelope, in logit space) to get each cube's
    L1_2 share; clipped to the measured range."""
    frac = np.asarray(response.get("l12_fraction", []), np.float64)
    med = np.asarray(response.get("median_probability", []), np.float64)
    if len(frac) < 3:
        raise InputError(None, "boundary refinement needs the model card's response curve "
                               "(metrics.response); evaluate the model with `apt-cnn evaluate`")
    y = np.maximum.accumulate(logit(med))
    keep = np.concatenate([[True], np.diff(y) > 1e-9])   # strictly increasing for interpolation
    return np.interp(logit(prob), y[keep], frac[keep])


def refine_mask(plain: np.ndarray, covered: np.ndarray, cube_vox: np.ndarray, prob: np.ndarray, m: int,
                response: dict, band_voxels: int) -> np.ndarray:
    """Refined voxel mask. cube_vox: voxel index of each evaluated cube's lower corner; only
    covered voxels (under at least one evaluated cube) near a boundary are relabelled."""
    share = share_from_probability(prob, response)
    boundary = ndimage.binary_dilation(plain) & ~ndimage.binary_erosion(plain)
    band = ndimage.binary_dilation(boundary, iterations=max(band_voxels, 1)) & covered
    shape = np.asarray(plain.shape)
    free_index = -np.ones(plain.size, np.int64)
    free = np.flatnonzero(band.ravel())
    free_index[free] = np.arange(len(free))
    offsets = np.stack(np.meshgrid(*[np.arange(m)] * 3, indexing="ij"), -1).reshape(-1, 3)
    rows, cols = [], []
    fixed_share = np.zeros(len(cube_vox))
    for off in offsets:
        v = cube_vox + off
        ok = np.all((v >= 0) & (v < shape), axis=1)
        flat = np.full(len(v), -1, np.int64)
        flat[ok] = np.ravel_multi_index(tuple(v[ok].T), plain.shape)
        fi = np.where(flat >= 0, free_index[np.maximum(flat, 0)], -1)
        # voxels outside the grid hold no ions: they count as FCC (share 0)
        fixed_share += np.where((flat >= 0) & (fi < 0), plain.ravel()[np.maximum(flat, 0)], 0) / m ** 3
        sel = np.flatnonzero(fi >= 0)
        rows.append(sel)
        cols.append(fi[sel])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    touched = np.unique(rows)
    if len(free) == 0 or len(touched) == 0:
        return plain.copy()
    row_of = -np.ones(len(cube_vox), np.int64)
    row_of[touched] = np.arange(len(touched))
    a = sparse.csr_matrix((np.full(len(rows), 1.0 / m ** 3), (row_of[rows], cols)),
                          shape=(len(touched), len(free)))
    target = share[touched] - fixed_share[touched]
    sol = lsq_linear(a, target, bounds=(0.0, 1.0), lsmr_tol="auto", max_iter=200)
    out = plain.copy().ravel()
    out[free] = sol.x > 0.5
    return out.reshape(plain.shape)
