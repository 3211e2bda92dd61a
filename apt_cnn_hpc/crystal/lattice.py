"""Lattice sites of a rotated crystal that fall inside a box of the reconstruction frame."""
import numpy as np


def lattice_sites(sites: np.ndarray, a_nm: float, rot: np.ndarray, lo, hi, origin_nm=(0, 0, 0)):
    """All sites of the lattice (cubic cell a_nm, fractional basis `sites`) with lab positions
    rot @ (crystal + 0) + origin inside [lo, hi).

    Returns (positions [n,3] float64 in nm, basis index [n] int16, fractional coordinates [n,3]
    of the site in its cell). The fractional coordinates decide sublattices of ordered variants.
    """
    lo = np.asarray(lo, float)
    hi = np.asarray(hi, float)
    org = np.asarray(origin_nm, float)
    corners = np.array([[lo[0] if i & 1 else hi[0], lo[1] if i & 2 else hi[1],
                         lo[2] if i & 4 else hi[2]] for i in range(8)]) - org
    cryst = corners @ rot / a_nm          # rot is orthonormal: crystal = rot.T @ lab
    cmin = np.floor(cryst.min(axis=0)).astype(int) - 1
    cmax = np.ceil(cryst.max(axis=0)).astype(int) + 1
    axes = [np.arange(cmin[d], cmax[d] + 1) for d in range(3)]
    cells = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 1, 3)
    frac = (cells + sites[None, :, :]).reshape(-1, 3)
    pos = (frac * a_nm) @ rot.T + org
    keep = np.all((pos >= lo) & (pos < hi), axis=1)
    basis = np.broadcast_to(np.arange(len(sites), dtype=np.int16), (cells.shape[0], len(sites)))
    return pos[keep], basis.reshape(-1)[keep], np.broadcast_to(sites, (cells.shape[0],) + sites.shape).reshape(-1, 3)[keep]
