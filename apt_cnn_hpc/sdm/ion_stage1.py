"""The 91 stage-1 features (sdm/ion_features.py's module doc) from the plane-referred sums, one
numba pass per query that writes the query's row in place: numpy's expression of them made ~40
temporaries of the chunk and a reordered copy of the sums. Compiled without fastmath and written
in numpy's order of operations (sums of types left to right, ln(1 + count) from numpy's own
log1p), so the rows are numpy's bit for bit (tests/test_ion_features.py keeps numpy's version as
the reference); the trained networks read exactly these features."""
import numba as nb
import numpy as np

from .ion_kernels import QUERY_BLOCK

N_STAGE1 = 91
REF_BALL = 4                                   # 1.3 nm: the sign of the variant
BALLS = (1, 2, 3, 4, 5, 6)                     # cumulative shells: radii 0.65 ... 2.0 nm


@nb.njit(inline="always")
def _sum3(x, j):
    return x[j] + x[j + 1] + x[j + 2]


@nb.njit(inline="always")
def _modulation(C, K, b):
    """(a, n, w, pl) of ball b: in-phase and quadrature solute modulation a, ions n, solutes w,
    their clipped fraction pl; C [s, 3] counts, K [s, 3] phasor sums per type."""
    n = max(_sum3(C[b], 0), 1.0)
    w = C[b, 1] + C[b, 2]
    pl = min(max(w / n, 0.02), 0.98)
    return K[b, 1] + K[b, 2] - pl * _sum3(K[b], 0), n, w, pl


@nb.njit(inline="always")
def _half(C, K, s, h, p0, sign):
    """(signed modulation in sd, solute fraction - p0) of half-space h of shell or ball s."""
    n = max(_sum3(C[s], 3 * h), 1.0)
    a = K[s, 3 * h + 1] + K[s, 3 * h + 2] - p0 * _sum3(K[s], 3 * h)
    return a.real * sign / np.sqrt(n * p0 * (1 - p0)), (C[s, 3 * h + 1] + C[s, 3 * h + 2]) / n - p0


@nb.njit(inline="always")
def _cumsum(x, out):
    """numpy's cumsum of x [s, t] along s."""
    for t in range(x.shape[1]):
        out[0, t] = x[0, t]
        for s in range(1, x.shape[0]):
            out[s, t] = out[s - 1, t] + x[s, t]


@nb.njit(parallel=True, cache=True)
def _stage1_rows(cnt6, S6, F, Z, rows, p0, fa, fb, amp, radii, log1p_n, out):
    """out[rows[q]] = features of query q's sums (cnt6, S6 [q, s, 6], F [q, s], Z [q, s, 3])."""
    nq, ns = cnt6.shape[0], cnt6.shape[1]
    for blk in nb.prange((nq + QUERY_BLOCK - 1) // QUERY_BLOCK):
        cnt, cc, c6 = np.empty((ns, 3)), np.empty((ns, 3)), np.empty((ns, 6))
        S, Sc = np.empty((ns, 3), np.complex128), np.empty((ns, 3), np.complex128)
        Zc, S6c, Fc = np.empty((ns, 3), np.complex128), np.empty((ns, 6), np.complex128), np.empty((ns, 1), np.complex128)
        for q in range(blk * QUERY_BLOCK, min((blk + 1) * QUERY_BLOCK, nq)):
            for s in range(ns):
                for t in range(3):
                    cnt[s, t] = cnt6[q, s, t] + cnt6[q, s, t + 3]
                    S[s, t] = S6[q, s, t] + S6[q, s, t + 3]
            _cumsum(cnt, cc)
            _cumsum(S, Sc)
            _cumsum(Z[q], Zc)
            _cumsum(F[q].reshape(ns, 1), Fc)
            _cumsum(cnt6[q], c6)
            _cumsum(S6[q], S6c)
            _features_one(cnt6[q], S6[q], cnt, S, cc, Sc, Zc, Fc, c6, S6c, p0, fa, fb, amp, radii, log1p_n,
                          out[rows[q]])


@nb.njit(inline="always")
def _features_one(cnt6, S6, cnt, S, cc, Sc, Zc, Fc, c6, S6c, p0, fa, fb, amp, radii, log1p_n, f):
    """One row f in the column order of the module doc of ion_features."""
    k = 0
    for b in BALLS:
        a, n, w, pl = _modulation(cc, Sc, b)
        sd = np.sqrt(n * pl * (1 - pl))
        ssum = _sum3(Sc[b], 0)
        a_a = Sc[b, 1] - cc[b, 1] / n * ssum
        a_b = Sc[b, 2] - cc[b, 2] / n * ssum
        f[k] = abs(a.real) / sd
        f[k + 1] = abs(a.imag) / sd
        f[k + 2] = abs(a_a.real) / np.sqrt(n * fa * (1 - fa))
        f[k + 3] = abs(a_b.real) / np.sqrt(n * fb * (1 - fb))
        f[k + 4] = (w / n - p0) / np.sqrt(p0 * (1 - p0) / n)
        f[k + 5] = w / n - p0
        f[k + 6] = cc[b, 1] / n - fa
        f[k + 7] = abs(a.real) / n
        k += 8
    sign = 1.0 if _modulation(cc, Sc, REF_BALL)[0].real >= 0 else -1.0
    for s in range(cnt.shape[0]):
        total = _sum3(cnt[s], 0)
        n = max(total, 1.0)
        a = S[s, 1] + S[s, 2] - p0 * _sum3(S[s], 0)
        f[k] = a.real * sign / np.sqrt(n * p0 * (1 - p0))
        f[k + 1] = log1p_n[int(total)]
        k += 2
    for b in (3, 6):
        _, n, w, pl = _modulation(cc, Sc, b)
        zd = Zc[b, 1] + Zc[b, 2] - pl * _sum3(Zc[b], 0)
        f[k] = abs(zd.real) / (np.sqrt(n * pl * (1 - pl)) * radii[b])
        k += 1
    for b in (3, 6):
        n = max(_sum3(cc[b], 0), 1.0)
        f[k] = Fc[b, 0].real / n / amp
        f[k + 1] = abs(Fc[b, 0].imag) / n / amp
        k += 2
    # half-spaces: the sign of both halves of the 1.3 nm ball together
    r = S6c[REF_BALL]
    sign = 1.0 if ((r[1] + r[2] + r[4] + r[5]) - p0 * (_sum3(r, 0) + r[3] + r[4] + r[5])).real >= 0 else -1.0
    for s in range(cnt6.shape[0]):
        pd, _ = _half(cnt6, S6, s, 0, p0, sign)
        pu, _ = _half(cnt6, S6, s, 1, p0, sign)
        f[k], f[k + 1] = max(pd, pu), min(pd, pu)
        k += 2
    for b in (1, 3, 5):
        pd, cd = _half(c6, S6c, b, 0, p0, sign)
        pu, cu = _half(c6, S6c, b, 1, p0, sign)
        f[k], f[k + 1], f[k + 2] = max(pd, pu), min(pd, pu), abs(cu - cd)
        k += 3


def stage1_rows(cnt6, S6, F, Z, rows, ctx, radii) -> np.ndarray:
    """[len(rows), N_STAGE1] float32: row rows[q] from the sums of query q (radii: the shells'
    outer radii; ctx: ion_features.context)."""
    p0, fa, fb = min(max(ctx["f_sol"], .005), .995), max(ctx["f_a"], .005), max(ctx["f_b"], .005)
    out = np.empty((len(rows), N_STAGE1), np.float32)
    if len(rows):
        log1p_n = np.log1p(np.arange(int(cnt6.sum(2).max()) + 1, dtype=np.float64))
        _stage1_rows(cnt6, S6, F, Z, np.asarray(rows, np.int64), p0, fa, fb, float(np.sqrt(ctx["coherence"])),
                     np.asarray(radii, np.float64), log1p_n, out)
    return out
