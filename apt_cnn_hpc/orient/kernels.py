"""A numba kernel for the spacing of planes already turned onto z: the coherent power of each
query's neighbours on a grid of axial wavenumbers in one pass (one exp per partner, the grid by
recurrence), so thousands of queries cost well under a second. The cell list and the z-range cut
are those of sdm/ion_kernels.py."""
import numba as nb
import numpy as np

from ..sdm.ion_kernels import _Partners, _spans


@nb.njit(parallel=True, fastmath=True, cache=True)
def _axial_grid(qpos, px, py, pz, start, origin, dims, cell, reach, rmax2, kz0, dkz, m, psum, nsum):
    """psum[q, a] = |sum_j exp(i (kz0 + a dkz) dz_j)|^2 over the partners within the ball;
    nsum[q] = their number."""
    for q in nb.prange(len(qpos)):
        xi, yi, zi = qpos[q, 0], qpos[q, 1], qpos[q, 2]
        acc = np.zeros(m, np.complex128)
        n = 0
        spans = np.empty(((2 * reach + 1) ** 2, 2), np.int64)
        for sp in range(_spans(xi, yi, zi, origin, cell, reach, rmax2, dims, start, spans)):
            for j in range(spans[sp, 0], spans[sp, 1]):
                dx = px[j] - xi
                dy = py[j] - yi
                dz = pz[j] - zi
                if dx * dx + dy * dy + dz * dz >= rmax2:
                    continue
                n += 1
                v = np.exp(1j * kz0 * dz)
                e = np.exp(1j * dkz * dz)
                for a in range(m):
                    acc[a] += v
                    v *= e
        nsum[q] = n
        for a in range(m):
            psum[q, a] = acc[a].real ** 2 + acc[a].imag ** 2


def axial_power(qpos, ppos, radius: float, kz):
    """Normalised coherent power (|S|^2 - n) / n^2 per query [q, len(kz)] of planes normal to z
    at the evenly spaced wavenumbers `kz` (same meaning as sdm.ion_kernels.coherent_power)."""
    kz = np.asarray(kz, np.float64)
    dkz = float(kz[1] - kz[0]) if len(kz) > 1 else 0.0
    P = _Partners(qpos, ppos, radius / 2)
    psum, nsum = np.zeros((len(P.q), len(kz))), np.zeros(len(P.q))
    if len(P.q) and len(P.ppos):
        _axial_grid(P.q, P.px, P.py, P.pz, *P.grid[:3], P.cell, 2, radius * radius, float(kz[0]), dkz, len(kz),
                    psum, nsum)
    psum, nsum = P.unsort(psum, nsum)
    n = np.maximum(nsum, 1)[:, None]
    return (psum - n) / n ** 2
