"""Local order of each ion: Fourier sums of its neighbours' positions along z.

Inside L1_2 seen along <011>, every other {022} plane is solute-rich, so the solute density of an
ion's neighbourhood along z carries the superlattice period a/sqrt(2) (0.2864 nm for Al) beside
the fundamental a/sqrt(8); in a random solid solution it does not. For neighbours j of ion i
within radius r, with weights w_j (e.g. 1 for solute), the sums
    N = sum_j 1,  W = sum_j w_j,  F_w(k) = sum_j w_j exp(i k z_j),  F_1(k) = sum_j exp(i k z_j)
give the plain order parameter |F_w - (W / N) F_1| / N (the solute modulation at wavenumber k,
its mean taken out). All radii and wavenumbers come from one pass over a cell list.
"""
import numba as nb
import numpy as np

from .kernels import build_cell_list


@nb.njit(parallel=True, cache=True)
def _fourier_sums(pos, weights, query, order, cell_start, origin, dims, radii, kz, n_out, w_out, f_out):
    r_max = radii[-1]
    n_r, n_c, n_k = len(radii), weights.shape[1], len(kz)
    r2 = radii * radii
    for q in nb.prange(len(query)):
        i = query[q]
        xi, yi, zi = pos[i, 0], pos[i, 1], pos[i, 2]
        cx = int(np.floor((xi - origin[0]) / r_max))
        cy = int(np.floor((yi - origin[1]) / r_max))
        cz = int(np.floor((zi - origin[2]) / r_max))
        for ax in range(max(cx - 1, 0), min(cx + 2, dims[0])):
            for ay in range(max(cy - 1, 0), min(cy + 2, dims[1])):
                for az in range(max(cz - 1, 0), min(cz + 2, dims[2])):
                    c = (ax * dims[1] + ay) * dims[2] + az
                    for kk in range(cell_start[c], cell_start[c + 1]):
                        j = order[kk]
                        dx = pos[j, 0] - xi
                        dy = pos[j, 1] - yi
                        dz = pos[j, 2] - zi
                        d2 = dx * dx + dy * dy + dz * dz
                        if d2 >= r2[n_r - 1]:
                            continue
                        first = 0
                        while d2 >= r2[first]:
                            first += 1
                        for r in range(first, n_r):
                            n_out[q, r] += 1
                            for ch in range(n_c):
                                w_out[q, r, ch] += weights[j, ch]
                        for k in range(n_k):
                            ph = kz[k] * pos[j, 2]
                            cr, ci = np.cos(ph), np.sin(ph)
                            for r in range(first, n_r):
                                f_out[q, r, 0, k] += complex(cr, ci)
                                for ch in range(n_c):
                                    f_out[q, r, ch + 1, k] += weights[j, ch] * complex(cr, ci)


def local_fourier(pos, weights, radii, periods_nm, query=None):
    """Per query ion (default: all) and radius: N [q, r], W [q, r, c] and F [q, r, 1 + c, k]
    (channel 0 unweighted) over neighbours within each radius (the ion itself included)."""
    pos = np.ascontiguousarray(pos, np.float64)
    weights = np.ascontiguousarray(np.asarray(weights, np.float64).reshape(len(pos), -1))
    radii = np.asarray(sorted(radii), np.float64)
    query = np.arange(len(pos)) if query is None else np.asarray(query, np.int64)
    kz = 2 * np.pi / np.asarray(periods_nm, np.float64)
    n_q, n_r, n_c = len(query), len(radii), weights.shape[1]
    n_out = np.zeros((n_q, n_r), np.int64)
    w_out = np.zeros((n_q, n_r, n_c))
    f_out = np.zeros((n_q, n_r, n_c + 1, len(kz)), np.complex128)
    if n_q and len(pos):
        order, start, origin, dims = build_cell_list(pos, radii[-1])
        _fourier_sums(pos, weights, query, order, start, origin, dims, radii, kz, n_out, w_out, f_out)
    return n_out, w_out, f_out


def order_parameter(pos, is_solute, radius_nm: float, period_nm: float, query=None) -> np.ndarray:
    """|sum_j (s_j - mean s) exp(2 pi i z_j / period)| / N over the neighbours within radius_nm."""
    n, w, f = local_fourier(pos, np.asarray(is_solute, np.float64), [radius_nm], [period_nm], query)
    n, w, f = n[:, 0], w[:, 0, 0], f[:, 0, :, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.abs(f[:, 1] - w / np.maximum(n, 1) * f[:, 0]) / np.maximum(n, 1), 0.0)
