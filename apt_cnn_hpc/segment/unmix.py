"""Unmixing cube shares into voxel fractions: the inverse of the scan's 4 nm window.

A cube's calibrated L1_2 probability estimates the share of its reference ions inside L1_2,
which is the reference-weighted mean of the L1_2 fractions o_v of the voxels it covers:
    share(c) = sum_{v in c} n_v o_v / sum_{v in c} n_v      (n_v: reference ions of voxel v).
Every voxel is covered by 64 cubes, so the fractions solve a bounded least-squares problem,
    min_o  1/2 sum_c (share(c) - s_c)^2 + lambda/2 sum_(v,v') (o_v - o_v')^2,   0 <= o <= 1,
(face neighbours v, v'; lambda > 0 fills voxels without references and damps noise). The box
sums of the scan (running sums along x, y, z) apply the operator and its adjoint in O(voxels), so
L-BFGS-B solves it for any grid the scan makes.
"""
import numpy as np
from scipy import ndimage
from scipy.optimize import Bounds, minimize

from ..sdm.voxel import box_sum_axis


def cube_sum(a: np.ndarray, m: int) -> np.ndarray:
    """Voxel grid [n...] -> sums over every cube of m^3 voxels overlapping it [n + m - 1 ...]
    (cube origins -(m-1)..n-1 along each axis, as the scan's full cube grid)."""
    out = a
    for axis, n in enumerate(a.shape):
        out = box_sum_axis(out, np.arange(-(m - 1), n), m, axis)
    return out


def cube_sum_adjoint(c: np.ndarray, m: int, shape) -> np.ndarray:
    """The adjoint of cube_sum: each voxel gets the sum over the m^3 cubes covering it."""
    out = c
    for axis, n in enumerate(shape):
        out = box_sum_axis(out, np.arange(n), m, axis)
    return out


def _smoothness(o: np.ndarray, free: np.ndarray):
    """1/2 sum of squared differences over face neighbours (both free), and its gradient."""
    value, grad = 0.0, np.zeros_like(o)
    for axis in range(o.ndim):
        lo = tuple(slice(None, -1) if a == axis else slice(None) for a in range(o.ndim))
        hi = tuple(slice(1, None) if a == axis else slice(None) for a in range(o.ndim))
        d = (o[hi] - o[lo]) * (free[hi] & free[lo])
        value += 0.5 * float(np.sum(d * d))
        grad[hi] += d
        grad[lo] -= d
    return value, grad


def unmix(share: np.ndarray, weight: np.ndarray, n_ref: np.ndarray, m: int, smoothing: float,
          free: np.ndarray, max_iterations: int = 500) -> np.ndarray:
    """Voxel L1_2 fractions in [0, 1] (0 outside `free`). `share`, `weight`: per cube of the full
    cube grid (weight 0 where no cube was evaluated); `n_ref`: reference ions per voxel."""
    shape = n_ref.shape
    den = cube_sum(n_ref, m)
    w = weight * (den > 0)
    inv = np.where(den > 0, 1.0 / np.maximum(den, 1e-12), 0.0)
    # start: the mean share of the covering cubes (what the paper's sum sees)
    cover = cube_sum_adjoint(w, m, shape)
    o0 = np.where(free & (cover > 0), cube_sum_adjoint(w * share, m, shape) / np.maximum(cover, 1e-12), 0.0)

    def objective(x):
        o = x.reshape(shape) * free
        r = (cube_sum(n_ref * o, m) * inv - share) * w
        grad = cube_sum_adjoint(r * inv, m, shape) * n_ref
        value = 0.5 * float(np.sum(r * r))
        if smoothing > 0:
            v, g = _smoothness(o, free)
            value += smoothing * v
            grad += smoothing * g
        return value, (grad * free).ravel()

    res = minimize(objective, o0.ravel(), jac=True, method="L-BFGS-B",
                   bounds=Bounds(np.zeros(o0.size), np.ones(o0.size)), options={"maxiter": max_iterations})
    return res.x.reshape(shape) * free


def refine_grid(fraction: np.ndarray, factor: int) -> np.ndarray:
    """Fractions at the centres of a grid `factor` times finer (trilinear between voxel centres),
    so boundaries fall between 1 nm voxels."""
    if factor == 1:
        return fraction
    shape = np.asarray(fraction.shape) * factor
    centres = [(np.arange(n) + 0.5) / factor - 0.5 for n in shape]
    coords = np.meshgrid(*centres, indexing="ij")
    return ndimage.map_coordinates(fraction, coords, order=1, mode="nearest")
