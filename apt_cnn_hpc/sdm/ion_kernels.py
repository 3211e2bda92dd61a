"""numba kernels of the per-ion lattice features: sums over each query ion's neighbours within
shells, one pass over a cell list of the partners. Queries are processed in cell order (cache
locality) and returned in their own order. Cells whose lateral distance from the query already
exceeds the outer radius are skipped, and each column of cells is cut to the z range the ball
reaches, so a query visits about the ball's volume, not the cube around it."""
import copy
import functools

import numba as nb
import numpy as np

from .kernels import build_cell_list


def _shell_lut(edges: np.ndarray, size: int = 8192):
    """(lut, scale, squared edges): lut[int(d2 * scale)] is the shell of d2 up to one step,
    which _shell corrects exactly (no search per partner)."""
    edges2 = np.asarray(edges, np.float64) ** 2
    scale = size / edges2[-1]
    d2 = (np.arange(size + 1) + 0.5) / scale
    lut = np.minimum(np.searchsorted(edges2, d2, side="right") - 1, len(edges) - 2).astype(np.int64)
    return lut, scale, edges2


@nb.njit(inline="always")
def _shell(d2, lut, scale, edges2):
    """Shell index of a squared distance below edges2[-1], exact at the edges."""
    s = lut[int(d2 * scale)]
    if d2 >= edges2[s + 1]:
        return s + 1
    if d2 < edges2[s]:
        return s - 1
    return s


class _Partners:
    """Partners sorted into cells of `cell` nm, queries in cell order, and the inverse order."""

    def __init__(self, qpos, ppos, cell):
        self.ppos = np.ascontiguousarray(ppos, np.float64)
        self.order, self.start, self.origin, self.dims = build_cell_list(self.ppos, cell)
        self.cell = float(cell)
        p = self.ppos[self.order]
        self.px, self.py, self.pz = (np.ascontiguousarray(p[:, i]) for i in range(3))
        self._set_queries(qpos)

    def _set_queries(self, qpos):
        qpos = np.ascontiguousarray(qpos, np.float64).reshape(-1, 3)
        qc = np.floor((qpos - self.origin) / self.cell).astype(np.int64)
        self.qorder = np.lexsort((qc[:, 2], qc[:, 1], qc[:, 0]))
        self.q = np.ascontiguousarray(qpos[self.qorder])

    def with_queries(self, qpos) -> "_Partners":
        """The same sorted partners (shared, not copied) for other queries."""
        other = copy.copy(self)
        other._set_queries(qpos)
        return other

    def sorted(self, values):
        return np.ascontiguousarray(np.asarray(values)[self.order])

    def unsort(self, *arrays):
        inv = np.empty_like(self.qorder)
        inv[self.qorder] = np.arange(len(self.qorder))
        return tuple(a[inv] for a in arrays)

    @property
    def grid(self):
        return self.start, self.origin, self.dims, self.cell


@nb.njit(inline="always")
def _spans(xi, yi, zi, origin, cell, reach, rmax2, dims, start, spans) -> int:
    """The partner-index ranges [spans[k, 0], spans[k, 1]) that a ball around (xi, yi, zi) can
    reach: per cell column within `reach` cells laterally, only the cells along z the ball
    touches (none for columns laterally outside it or queries beyond the partners' box).
    Returns the number of ranges written."""
    cx = int(np.floor((xi - origin[0]) / cell))
    cy = int(np.floor((yi - origin[1]) / cell))
    n = 0
    for ax in range(max(cx - reach, 0), min(cx + reach + 1, dims[0])):
        ddx = max(origin[0] + ax * cell - xi, 0.0, xi - (origin[0] + (ax + 1) * cell))
        for ay in range(max(cy - reach, 0), min(cy + reach + 1, dims[1])):
            ddy = max(origin[1] + ay * cell - yi, 0.0, yi - (origin[1] + (ay + 1) * cell))
            rho2 = ddx * ddx + ddy * ddy
            if rho2 >= rmax2:
                continue
            h = np.sqrt(rmax2 - rho2)
            z_lo = max(int(np.floor((zi - h - origin[2]) / cell)), 0)
            z_hi = min(int(np.floor((zi + h - origin[2]) / cell)), dims[2] - 1)
            if z_hi < z_lo:
                continue
            c0 = (ax * dims[1] + ay) * dims[2]
            spans[n, 0], spans[n, 1] = start[c0 + z_lo], start[c0 + z_hi + 1]
            n += 1
    return n


QUERY_BLOCK = 256      # queries per parallel task: their accumulators are allocated once per block


@nb.njit(parallel=True, fastmath=True, cache=True)
def _plane_sums(qpos, px, py, pz, ptype, ser, sei, fr, fi, start, origin, dims, cell, reach, lut, scale,
                edges2, cnt, S, F, Z):
    """Per query and shell s: cnt[q, s, t + 3 h], S[q, s, t + 3 h] (counts and sums of the
    superlattice phasor by partner type t in 0, 1, 2 and half-space h: dz <= 0, dz > 0);
    F[q, s] (fundamental phasor); Z[q, s, t] (superlattice phasor times dz)."""
    ns = len(edges2) - 1
    for blk in nb.prange((len(qpos) + QUERY_BLOCK - 1) // QUERY_BLOCK):
        # per shell: counts, S re, S im (t + 3 h); Z re, Z im (t); F re, F im
        acc = np.empty((ns, 26))
        spans = np.empty(((2 * reach + 1) ** 2, 2), np.int64)
        for q in range(blk * QUERY_BLOCK, min((blk + 1) * QUERY_BLOCK, len(qpos))):
            _plane_sums_one(qpos[q, 0], qpos[q, 1], qpos[q, 2], px, py, pz, ptype, ser, sei, fr, fi, start,
                            origin, dims, cell, reach, lut, scale, edges2, acc, spans)
            for s in range(ns):
                F[q, s] = complex(acc[s, 24], acc[s, 25])
                for t in range(6):
                    cnt[q, s, t] = acc[s, t]
                    S[q, s, t] = complex(acc[s, 6 + t], acc[s, 12 + t])
                for t in range(3):
                    Z[q, s, t] = complex(acc[s, 18 + t], acc[s, 21 + t])


@nb.njit(inline="always")
def _plane_sums_one(xi, yi, zi, px, py, pz, ptype, ser, sei, fr, fi, start, origin, dims, cell, reach, lut,
                    scale, edges2, acc, spans):
    """One query's sums into acc (zeroed here), in the partners' cell order. A partner's sums sit
    in one row of its shell (a layout by sum, each shell's slots in 7 rows, was 1.15x slower)."""
    rmax2 = edges2[-1]
    acc[:] = 0.0
    for sp in range(_spans(xi, yi, zi, origin, cell, reach, rmax2, dims, start, spans)):
        for j in range(spans[sp, 0], spans[sp, 1]):
            dx = px[j] - xi
            dy = py[j] - yi
            dz = pz[j] - zi
            d2 = dx * dx + dy * dy + dz * dz
            if d2 >= rmax2:
                continue
            a = acc[_shell(d2, lut, scale, edges2)]
            t = ptype[j]
            h = t + (3 if dz > 0 else 0)
            a[h] += 1.0
            a[6 + h] += ser[j]
            a[12 + h] += sei[j]
            a[18 + t] += ser[j] * dz
            a[21 + t] += sei[j] * dz
            a[24] += fr[j]
            a[25] += fi[j]


class PlaneSums:
    """plane_sums of any queries around one set of partners of type 0/1/2 carrying the complex
    superlattice and fundamental phasors, sorted into cells once (a scan's chunks of queries
    share them): call with query positions for (cnt [q, s, 6], S [q, s, 6], F [q, s], Z [q, s, 3])."""

    def __init__(self, ppos, ptype, superlattice, fundamental, edges, cells_per_r=4, partners=None):
        self.edges = np.asarray(edges, np.float64)
        self.cells_per_r = cells_per_r
        self.P = partners or _Partners(np.zeros((0, 3)), ppos, self.edges[-1] / cells_per_r)
        e, f = self.P.sorted(superlattice), self.P.sorted(fundamental)
        self.values = (self.P.sorted(ptype).astype(np.int64), e.real.copy(), e.imag.copy(), f.real.copy(),
                       f.imag.copy())

    def __call__(self, qpos):
        P, *sums = self.in_cell_order(qpos)
        return P.unsort(*sums)

    def in_cell_order(self, qpos):
        """(P, cnt, S, F, Z) with the sums of the queries P.q = qpos[P.qorder] (the kernel's
        order: a caller that writes each query's result to its own row needs no reordered copy)."""
        P = self.P.with_queries(qpos)
        lut, scale, edges2 = _shell_lut(self.edges)
        nq, ns = len(P.q), len(self.edges) - 1
        cnt, S = np.zeros((nq, ns, 6)), np.zeros((nq, ns, 6), np.complex128)
        F, Z = np.zeros((nq, ns), np.complex128), np.zeros((nq, ns, 3), np.complex128)
        if nq and len(P.ppos):
            _plane_sums(P.q, P.px, P.py, P.pz, *self.values, *P.grid[:3], P.cell, self.cells_per_r, lut, scale,
                        edges2, cnt, S, F, Z)
        return P, cnt, S, F, Z


def plane_sums(qpos, ppos, ptype, superlattice, fundamental, edges, cells_per_r=4, partners=None):
    """PlaneSums of one set of queries. `partners`: a _Partners of ppos built for these edges,
    reused across calls with other phasors."""
    return PlaneSums(ppos, ptype, superlattice, fundamental, edges, cells_per_r, partners)(qpos)


@functools.cache
def _moments_kernel(nc: int, first: int):
    """The moments kernel for nc channels of which the first `first` get first moments, both
    compile-time constants (loops over channels unrolled: a runtime channel count cost ~20 %)."""
    @nb.njit(parallel=True, fastmath=True, cache=True)
    def _moments(qpos, px, py, pz, pv, start, origin, dims, cell, reach, lut, scale, edges2, out):
        """out[q, s, c, m]: m = 0 sum of pv[j, c], m = 1..3 sum of pv[j, c] (dx, dy, dz) for
        c < first (0 for the other channels), over shell s."""
        ns = len(edges2) - 1
        for blk in nb.prange((len(qpos) + QUERY_BLOCK - 1) // QUERY_BLOCK):
            acc = np.empty((ns, nc * 4))
            spans = np.empty(((2 * reach + 1) ** 2, 2), np.int64)
            for q in range(blk * QUERY_BLOCK, min((blk + 1) * QUERY_BLOCK, len(qpos))):
                _moments_one(qpos[q, 0], qpos[q, 1], qpos[q, 2], px, py, pz, pv, nc, first, start, origin, dims,
                             cell, reach, lut, scale, edges2, acc, spans)
                for s in range(ns):
                    for c in range(nc):
                        for m in range(4):
                            out[q, s, c, m] = acc[s, c * 4 + m]

    return _moments


@nb.njit(inline="always")
def _moments_one(xi, yi, zi, px, py, pz, pv, nc, first, start, origin, dims, cell, reach, lut, scale, edges2, acc,
                 spans):
    """One query's moments into acc (zeroed here), in the partners' cell order (inlined into
    _moments_kernel's kernel, where nc and first are constants)."""
    rmax2 = edges2[-1]
    acc[:] = 0.0
    for sp in range(_spans(xi, yi, zi, origin, cell, reach, rmax2, dims, start, spans)):
        for j in range(spans[sp, 0], spans[sp, 1]):
            dx = px[j] - xi
            dy = py[j] - yi
            dz = pz[j] - zi
            d2 = dx * dx + dy * dy + dz * dz
            if d2 >= rmax2:
                continue
            s = _shell(d2, lut, scale, edges2)
            for c in range(first):
                v = pv[j, c]
                acc[s, c * 4] += v
                acc[s, c * 4 + 1] += v * dx
                acc[s, c * 4 + 2] += v * dy
                acc[s, c * 4 + 3] += v * dz
            for c in range(first, nc):
                acc[s, c * 4] += pv[j, c]


class Moments:
    """Zeroth and first moments of partner values per query and shell, [q, s, c, 4], for any
    queries around one set of partners sorted into cells once. first: how many leading channels
    get first moments (default all; the others' are left 0, for callers that read only their
    sums: a third of the additions less for stage 2's three channels)."""

    def __init__(self, ppos, values, edges, cells_per_r=3, first=None):
        self.edges = np.asarray(edges, np.float64)
        self.cells_per_r = cells_per_r
        self.P = _Partners(np.zeros((0, 3)), ppos, self.edges[-1] / cells_per_r)
        self.values = self.P.sorted(np.asarray(values, np.float64).reshape(len(self.P.ppos), -1))
        nc = self.values.shape[1]
        self.kernel = _moments_kernel(nc, nc if first is None else int(first))

    def __call__(self, qpos):
        P = self.P.with_queries(qpos)
        lut, scale, edges2 = _shell_lut(self.edges)
        out = np.zeros((len(P.q), len(self.edges) - 1, self.values.shape[1], 4))
        if len(P.q) and len(P.ppos):
            self.kernel(P.q, P.px, P.py, P.pz, self.values, *P.grid[:3], P.cell, self.cells_per_r, lut, scale,
                        edges2, out)
        return P.unsort(out)[0]


def moments(qpos, ppos, values, edges, cells_per_r=3, first=None):
    """Moments of one set of queries: [q, s, c, 4] (first: as Moments)."""
    return Moments(ppos, values, edges, cells_per_r, first)(qpos)


@nb.njit(parallel=True, fastmath=True, cache=True)
def _wavevector_grid(qpos, px, py, pz, start, origin, dims, cell, reach, rmax2, k0, da, db, psum, nsum):
    """psum[q, a, b] = |sum_j exp(i k . (r_j - r_i))|^2 for k = k0 + a da + b db over the partners
    within the ball (one exp per partner and step, the grid by recurrence); nsum[q] = their number."""
    ma, mb = psum.shape[1], psum.shape[2]
    for q in nb.prange(len(qpos)):
        xi, yi, zi = qpos[q, 0], qpos[q, 1], qpos[q, 2]
        acc = np.zeros((ma, mb), np.complex128)
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
                va = np.exp(1j * (k0[0] * dx + k0[1] * dy + k0[2] * dz))
                ea = np.exp(1j * (da[0] * dx + da[1] * dy + da[2] * dz))
                eb = np.exp(1j * (db[0] * dx + db[1] * dy + db[2] * dz))
                for a in range(ma):
                    vb = va
                    for b in range(mb):
                        acc[a, b] += vb
                        vb *= eb
                    va *= ea
        nsum[q] = n
        for a in range(ma):
            for b in range(mb):
                psum[q, a, b] = acc[a, b].real ** 2 + acc[a, b].imag ** 2


def wavevector_power(qpos, ppos, radius, k0, da, db, ma: int, mb: int):
    """Normalised coherent power (|S|^2 - n) / n^2 per query of the planes of wavevector
    k = k0 + a da + b db on an ma x mb grid: [q, a, b]; its expectation is 0 for random positions
    and the squared plane contrast for a lattice."""
    P = _Partners(qpos, ppos, radius / 2)
    psum, nsum = np.zeros((len(P.q), ma, mb)), np.zeros(len(P.q))
    if len(P.q) and len(P.ppos):
        vec = lambda v: np.asarray(v, np.float64)  # noqa: E731
        _wavevector_grid(P.q, P.px, P.py, P.pz, *P.grid[:3], P.cell, 2, radius * radius, vec(k0), vec(da), vec(db),
                         psum, nsum)
    psum, nsum = P.unsort(psum, nsum)
    n = np.maximum(nsum, 1)[:, None, None]
    return (psum - n) / n ** 2


def coherent_power(qpos, ppos, radius, kx0, ky0, kz, dk, na):
    """Coherent power [q, a, b] on a (2 na + 1)^2 grid of lateral components
    (kx0 + (a - na) dk, ky0 + (b - na) dk) at the axial component kz."""
    return wavevector_power(qpos, ppos, radius, (kx0 - na * dk, ky0 - na * dk, kz), (dk, 0, 0), (0, dk, 0),
                            2 * na + 1, 2 * na + 1)


def axial_power(qpos, ppos, radius: float, kz):
    """Coherent power [q, len(kz)] of planes normal to z at the evenly spaced wavenumbers `kz`."""
    kz = np.asarray(kz, np.float64)
    dkz = float(kz[1] - kz[0]) if len(kz) > 1 else 0.0
    return wavevector_power(qpos, ppos, radius, (0, 0, kz[0]), (0, 0, dkz), (0, 0, 0), len(kz), 1)[:, :, 0]
