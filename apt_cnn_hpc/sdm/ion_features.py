"""Per-ion features of L1_2 order, referred to the fitted lattice planes (sdm/lattice.py).

Stage 1 (one pass over ranged neighbours within 2 nm, shells at EDGES_NM): for partner types
(other, solute A, solute B) and half-spaces (below / above the ion along z), counts and sums of
the superlattice phasor exp(i psi / 2) (half the fundamental wavenumber: every other {022} plane
is solute-rich in L1_2), of the fundamental phasor exp(i psi), and of the superlattice phasor
times dz, with psi the plane phase referred to the local plane offset. From these, per ball:
the in-phase and quadrature solute modulation in units of its random-solution standard deviation
(real part: the L1_2 signal, imaginary: noise), per-solute modulations, composition vs the data
set's; per shell the phase-locked modulation (sign set by the 1.3 nm ball, since the two L1_2
variants differ only in sign); the z-gradient of the modulation; the fundamental plane contrast
relative to the data set's; the modulation of the half-spaces (an interface cuts one side).

Stage 2: from every ion's stage-1 probability, the shell means of p and of the clipped logit
around the ion and the dipole of p (axial, lateral) at 0.85 and 1.5 nm; plus the order amplitude
and composition of 1-2 nm balls relative to the data set's own precipitate and matrix levels
(ions with stage-1 p > 0.8 and < 0.05), so the decision adapts to the specimen's contrast.
"""
import numpy as np

from .ion_kernels import Moments, PlaneSums
from .ion_stage1 import BALLS, N_STAGE1, stage1_rows
from .lattice import OffsetField, PlaneField, local_offset

EDGES_NM = np.array([0.0, 0.45, 0.65, 0.85, 1.05, 1.3, 1.6, 2.0])
EDGES_S2_NM = np.array([0.0, 0.35, 0.6, 0.85, 1.1, 1.5])
N_STAGE2 = 28
HALO_NM = EDGES_NM[-1] + EDGES_S2_NM[-1]       # reach of an ion's stage-2 features
# the stage-1 columns stage 2 reads (per ball: composition, order amplitude), so callers keep
# 12 of the 91 columns per ion
LEVEL_COLUMNS = np.array([b * 8 + k for b in range(len(BALLS)) for k in (5, 7)])


def partner_types(species, solutes_idx) -> np.ndarray:
    """0 for ranged non-solute ions, 1 and 2 for the two solutes, -1 unranged."""
    t = np.where(species >= 0, 0, -1).astype(np.int64)
    for k, idx in enumerate(solutes_idx):
        t[species == idx] = k + 1
    return t


def context(types, coherence: float) -> dict:
    """Data-set statistics the features are normalised by."""
    return context_of_counts(np.bincount(types[types >= 0], minlength=3)[:3], coherence)


def context_of_counts(counts, coherence: float) -> dict:
    """context() from the data set's ranged ions per partner type (other, solute A, solute B)."""
    n = max(int(np.sum(counts)), 1)
    fa, fb = int(counts[1]) / n, int(counts[2]) / n
    return {"f_a": fa, "f_b": fb, "f_sol": fa + fb, "coherence": float(max(coherence, 1e-5))}


class PlaneReferredSums:
    """Stage-1 sums (cnt [q, s, 6], S [q, s, 6], F [q, s], Z [q, s, 3]) over the ranged
    neighbours of query positions, phases referred to the local plane offset (`offset`, default:
    the one of these ions), and the features of them. The ranged ions are sorted into cells with
    their phasors once, so chunks of queries cost only their own sums."""

    def __init__(self, xyz, types, field: PlaneField, offset: OffsetField | None = None):
        ranged = types >= 0
        self.pos = np.ascontiguousarray(xyz[ranged], np.float64)
        self.psi = field.phase(self.pos)
        self.coherence = field.coherence
        self.offset = offset
        self.sums = PlaneSums(self.pos, types[ranged], np.exp(0.5j * self.psi), np.exp(1j * self.psi), EDGES_NM)

    def in_cell_order(self, q):
        """(order, cnt, S, F, Z): the sums of the queries q[order]."""
        P, cnt, S, F, Z = self.sums.in_cell_order(np.asarray(q, np.float64))
        if self.offset is not None:
            u = self.offset.at(P.q)
        else:
            u = local_offset(self.pos, self.psi, P.q, self.coherence) if len(self.pos) else np.ones(len(P.q), complex)
        half = np.conj(np.sqrt(u))
        S *= half[:, None, None]
        Z *= half[:, None, None]
        F *= np.conj(u)[:, None]
        return P.qorder, cnt, S, F, Z

    def features(self, q, ctx) -> np.ndarray:
        """[len(q), N_STAGE1] float32 (see module doc)."""
        order, *sums = self.in_cell_order(q)
        return stage1_rows(*sums, order, ctx, EDGES_NM[1:])


def stage1_chunks(xyz, types, field: PlaneField, query=None, chunk=200_000, ctx=None, offset=None):
    """Yield (slice of `query`, its stage-1 features) chunk by chunk (default query: all ions),
    bounding the sums' memory; `ctx` and `offset` default to those of these ions (a distributed
    scan passes the data set's)."""
    ctx = ctx or context(types, field.coherence)
    query = np.arange(len(xyz)) if query is None else np.asarray(query)
    sums = PlaneReferredSums(xyz, types, field, offset)
    for i in range(0, len(query), chunk):
        yield slice(i, i + chunk), sums.features(xyz[query[i:i + chunk]], ctx)


def stage1(xyz, types, field: PlaneField, query=None, chunk=200_000, ctx=None, offset=None) -> np.ndarray:
    """Stage-1 features [len(query), N_STAGE1] of the query ions (see stage1_chunks)."""
    out = np.empty((len(xyz) if query is None else len(query), N_STAGE1), np.float32)
    for rows, X in stage1_chunks(xyz, types, field, query, chunk, ctx, offset):
        out[rows] = X
    return out


def level_samples(L, z1) -> tuple:
    """What levels() reads: order amplitude and composition of the 1.3 nm ball of the ions with
    stage-1 p > 0.8, and the composition of those with p < 0.05 (L: X1[:, LEVEL_COLUMNS])."""
    p = 1 / (1 + np.exp(-z1))
    inside, matrix = p > 0.8, p < 0.05
    amp, comp = L[:, 2 * 3 + 1], L[:, 2 * 3]
    return amp[inside], comp[inside], comp[matrix]


def levels(L, z1) -> tuple:
    """(order amplitude inside, composition inside, composition of the matrix) of the data set
    (medians; defaults where fewer than 300 ions; L: X1[:, LEVEL_COLUMNS])."""
    return levels_of(*level_samples(L, z1))


def levels_of(amp_in, comp_in, comp_mat) -> tuple:
    """Medians (order-free, so samples gathered from ranks in any order give the same levels)."""
    a_in = float(np.median(amp_in)) if len(amp_in) >= 300 else 0.08
    c_in = float(np.median(comp_in)) if len(comp_in) >= 300 else 0.0
    c_mat = float(np.median(comp_mat)) if len(comp_mat) >= 300 else 0.0
    return a_in, c_in, c_mat


class Stage2:
    """Stage-2 features of any rows from the stage-1 logits z1 of every ion of `xyz` and the data
    set's levels `lev`: the neighbours' p and logit sorted into cells once."""

    def __init__(self, xyz, z1, lev):
        self.pos = np.asarray(xyz, np.float64)
        self.p = 1 / (1 + np.exp(-z1))
        self.zc = np.clip(z1, -8, 8) / 8
        self.lev = lev
        # the dipoles read the first moments of the ions and of p only
        self.moments = Moments(self.pos, np.column_stack([np.ones(len(self.p)), self.p, self.zc]), EDGES_S2_NM, first=2)

    def __call__(self, L_rows, rows=None) -> np.ndarray:
        """[len(rows), N_STAGE2] float32 for the ions `rows` (default all), with their stage-1 level
        columns L_rows (X1[rows][:, LEVEL_COLUMNS])."""
        own = slice(None) if rows is None else rows
        M = self.moments(self.pos[own])
        f = [self.p[own], self.zc[own]]
        for s in range(M.shape[1]):
            n = np.maximum(M[:, s, 0, 0], 1)
            f += [M[:, s, 1, 0] / n, M[:, s, 2, 0] / n]
        Mc = M[:, 0, :2].copy()        # the balls of the ions and of p, shells added in order
        for b in range(1, M.shape[1]):
            Mc += M[:, b, :2]
            if b in (2, 4):
                n = np.maximum(Mc[:, 0, 0], 1)
                r = EDGES_S2_NM[b + 1]
                d = Mc[:, 1, 1:] - Mc[:, 0, 1:] * (Mc[:, 1, 0] / n)[:, None]
                f += [np.abs(d[:, 2]) / (n * r), np.hypot(d[:, 0], d[:, 1]) / (n * r)]
        a_in, c_in, c_mat = self.lev
        contrast = max(c_in - c_mat, 0.03)
        for b in range(6):
            f += [L_rows[:, 2 * b + 1] / a_in, (L_rows[:, 2 * b] - c_mat) / contrast]
        out = np.empty((len(M), len(f)), np.float32)
        for k, col in enumerate(f):
            out[:, k] = col
        return out


def stage2_features(xyz, z1, L_rows, lev, rows=None) -> np.ndarray:
    """Stage2(xyz, z1, lev) of one set of rows."""
    return Stage2(xyz, z1, lev)(L_rows, rows)
