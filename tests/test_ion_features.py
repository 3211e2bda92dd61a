"""The per-ion lattice features (sdm/lattice.py, sdm/ion_kernels.py, sdm/ion_features.py,
sdm/ion_stage1.py): fast kernels equal brute force, the numba features equal numpy's, the fitted
plane field recovers the tilt and spacing an instrument imposed, and the superlattice features
separate L1_2 from FCC ions."""
import numpy as np
import pytest

from apt_cnn_hpc.config import load_config, merge
from apt_cnn_hpc.crystal.specimen import make_specimen
from apt_cnn_hpc.sdm.ion_features import (EDGES_NM, EDGES_S2_NM, N_STAGE1, N_STAGE2, PlaneReferredSums, context,
                                          partner_types, stage1, stage2_features)
from apt_cnn_hpc.sdm.ion_kernels import Moments, axial_power, coherent_power, plane_sums
from apt_cnn_hpc.sdm.ion_stage1 import BALLS, REF_BALL
from apt_cnn_hpc.sdm.lattice import A_NM, PlaneField, fit_plane_field


@pytest.fixture(scope="module")
def cloud():
    r = np.random.default_rng(5)
    pos = r.uniform(0, 6, (3000, 3))
    # queries on partners and around the partners' box (beyond it too: cells must not be overrun)
    q = np.concatenate([pos[r.choice(3000, 60)], r.uniform(-2.5, 8.5, (30, 3))])
    return pos, r.integers(0, 3, len(pos)), np.exp(1j * r.uniform(0, 6.3, len(pos))), q


def _shell(d, edges):
    return np.searchsorted(edges, d, side="right") - 1


def test_plane_sums_equal_brute_force(cloud):
    pos, types, e, q = cloud
    f = e ** 2
    cnt, S, F, Z = plane_sums(q, pos, types, e, f, EDGES_NM)
    for i, x in enumerate(q):
        dv = pos - x
        d = np.linalg.norm(dv, axis=1)
        s = _shell(d, EDGES_NM)
        for k in range(len(EDGES_NM) - 1):
            m = s == k
            np.testing.assert_allclose(F[i, k], f[m].sum(), atol=1e-9)
            for t in range(3):
                for h, side in enumerate((dv[:, 2] <= 0, dv[:, 2] > 0)):
                    mt = m & (types == t) & side
                    assert cnt[i, k, t + 3 * h] == mt.sum()
                    np.testing.assert_allclose(S[i, k, t + 3 * h], e[mt].sum(), atol=1e-9)
                np.testing.assert_allclose(Z[i, k, t], (e * dv[:, 2])[m & (types == t)].sum(), atol=1e-9)


@pytest.mark.parametrize("first", [None, 1])
def test_moments_equal_brute_force(cloud, first):
    """Every channel's sums; first moments of the leading `first` channels (of all by default)."""
    pos, types, _, q = cloud
    vals = np.column_stack([np.ones(len(pos)), types.astype(float), np.cos(pos[:, 0])])
    edges = np.array([0.0, 0.5, 1.1, 1.5])
    M = Moments(pos, vals, edges, first=first)(q)
    for i, x in enumerate(q):
        dv = pos - x
        s = _shell(np.linalg.norm(dv, axis=1), edges)
        for k in range(3):
            m = s == k
            for c in range(3):
                np.testing.assert_allclose(M[i, k, c, 0], vals[m, c].sum(), atol=1e-9)
                dipole = (vals[m, c][:, None] * dv[m]).sum(0) if first is None or c < first else np.zeros(3)
                np.testing.assert_allclose(M[i, k, c, 1:], dipole, atol=1e-9)


def test_coherent_power_equals_brute_force(cloud):
    pos, _, _, q = cloud
    kz, dk = 40.0, 0.5
    P = coherent_power(q, pos, 2.0, 0.3, -0.2, kz, dk, 1)
    for i, x in enumerate(q[:10]):
        dv = pos - x
        m = np.linalg.norm(dv, axis=1) < 2.0
        for a in range(3):
            for b in range(3):
                k = np.array([0.3 + (a - 1) * dk, -0.2 + (b - 1) * dk, kz])
                n = m.sum()
                ref = (abs(np.exp(1j * dv[m] @ k).sum()) ** 2 - n) / n ** 2
                np.testing.assert_allclose(P[i, a, b], ref, rtol=1e-9, atol=1e-12)
    kzs = np.array([38.0, 41.0, 44.0])
    A = axial_power(q[:10], pos, 2.0, kzs)
    for i, x in enumerate(q[:10]):
        dz = (pos - x)[np.linalg.norm(pos - x, axis=1) < 2.0][:, 2]
        ref = (np.abs(np.exp(1j * np.outer(kzs, dz)).sum(1)) ** 2 - len(dz)) / len(dz) ** 2
        np.testing.assert_allclose(A[i], ref, rtol=1e-9, atol=1e-12)


def _specimen(seed, **over):
    cfg = merge(load_config("specimen"), {"size_nm": [14, 14, 14], **over})
    cfg["seed"] = seed
    s = make_specimen(cfg)
    species = s["ranges"].label(s["mq"])
    types = partner_types(species, [s["ranges"].index("Li"), s["ranges"].index("Mg")])
    return s, types


def test_plane_field_recovers_tilt_and_spacing():
    """A pole tilted 2 deg and z stretched by 2 %: the planes' normal is the tilted pole with its
    z component divided by 1.02, so the fitted tilt is atan(tan 2 deg x 1.02) and the spacing
    d_022 / |(sin 2 deg, cos 2 deg / 1.02)|."""
    s, types = _specimen(31, detector={"pole_tilt_deg": 2.0, "pole_tilt_azimuth_deg": 60.0, "z_scale": 1.02})
    field = fit_plane_field(s["xyz"].astype(np.float64), types >= 0)
    t = np.radians(2.0)
    tilt = np.degrees(np.arctan(np.tan(t) * 1.02))
    spacing = A_NM / np.sqrt(8) / np.hypot(np.sin(t), np.cos(t) / 1.02)
    print(field.to_dict())
    assert field.found
    assert abs(field.tilt_deg - tilt) <= 0.1
    assert abs(field.spacing_nm / spacing - 1) <= 0.003


def test_plane_field_says_when_planes_are_not_resolved():
    """sigma_z 0.1 nm washes out the 0.143 nm planes: no significant coherence, nominal lattice."""
    s, types = _specimen(32, detector={"sigma_z_nm": 0.1}, precipitates={"volume_fraction": 0.0})
    field = fit_plane_field(s["xyz"].astype(np.float64), types >= 0)
    assert not field.found and field.tilt_deg == 0.0


def stage1_features_numpy(cnt6, S6, F, Z, ctx) -> np.ndarray:
    """The stage-1 features as numpy wrote them until the numba pass (sdm/ion_stage1.py): the
    reference it must equal bit for bit."""
    cnt, S = cnt6[:, :, :3] + cnt6[:, :, 3:], S6[:, :, :3] + S6[:, :, 3:]
    cc, Sc, Fc, Zc = np.cumsum(cnt, 1), np.cumsum(S, 1), np.cumsum(F, 1), np.cumsum(Z, 1)
    p0, fa, fb = min(max(ctx["f_sol"], .005), .995), max(ctx["f_a"], .005), max(ctx["f_b"], .005)
    amp = np.sqrt(ctx["coherence"])
    f = []

    def modulation(C, K, b):
        n = np.maximum(C[:, b].sum(1), 1)
        w = C[:, b, 1] + C[:, b, 2]
        pl = np.clip(w / n, 0.02, 0.98)
        return K[:, b, 1] + K[:, b, 2] - pl * K[:, b].sum(1), n, w, pl

    for b in BALLS:
        a, n, w, pl = modulation(cc, Sc, b)
        sd = np.sqrt(n * pl * (1 - pl))
        a_a = Sc[:, b, 1] - cc[:, b, 1] / n * Sc[:, b].sum(1)
        a_b = Sc[:, b, 2] - cc[:, b, 2] / n * Sc[:, b].sum(1)
        f += [np.abs(a.real) / sd, np.abs(a.imag) / sd,
              np.abs(a_a.real) / np.sqrt(n * fa * (1 - fa)), np.abs(a_b.real) / np.sqrt(n * fb * (1 - fb)),
              (w / n - p0) / np.sqrt(p0 * (1 - p0) / n), w / n - p0, cc[:, b, 1] / n - fa, np.abs(a.real) / n]
    sign = np.where(modulation(cc, Sc, REF_BALL)[0].real >= 0, 1.0, -1.0)
    for s in range(cnt.shape[1]):
        n = np.maximum(cnt[:, s].sum(1), 1)
        a = S[:, s, 1] + S[:, s, 2] - p0 * S[:, s].sum(1)
        f += [a.real * sign / np.sqrt(n * p0 * (1 - p0)), np.log1p(cnt[:, s].sum(1))]
    for b in (3, 6):
        _, n, w, pl = modulation(cc, Sc, b)
        zd = Zc[:, b, 1] + Zc[:, b, 2] - pl * Zc[:, b].sum(1)
        f += [np.abs(zd.real) / (np.sqrt(n * pl * (1 - pl)) * EDGES_NM[b + 1])]
    for b in (3, 6):
        n = np.maximum(cc[:, b].sum(1), 1)
        f += [Fc[:, b].real / n / amp, np.abs(Fc[:, b].imag) / n / amp]
    # half-spaces: same sign reference, over all three types and both halves
    c6, S6c = np.cumsum(cnt6, 1), np.cumsum(S6, 1)
    sign = np.where((S6c[:, REF_BALL, [1, 2, 4, 5]].sum(1) - p0 * S6c[:, REF_BALL].sum(1)).real >= 0, 1.0, -1.0)

    def half(C, K, b, h):
        t = slice(3 * h, 3 * h + 3)
        n = np.maximum(C[:, b, t].sum(1), 1)
        a = K[:, b, 3 * h + 1] + K[:, b, 3 * h + 2] - p0 * K[:, b, t].sum(1)
        return a.real * sign / np.sqrt(n * p0 * (1 - p0)), (C[:, b, 3 * h + 1] + C[:, b, 3 * h + 2]) / n - p0

    for s in range(cnt6.shape[1]):
        (pd, _), (pu, _) = half(cnt6, S6, s, 0), half(cnt6, S6, s, 1)
        f += [np.maximum(pd, pu), np.minimum(pd, pu)]
    for b in (1, 3, 5):
        (pd, cd), (pu, cu) = half(c6, S6c, b, 0), half(c6, S6c, b, 1)
        f += [np.maximum(pd, pu), np.minimum(pd, pu), np.abs(cu - cd)]
    return np.column_stack(f).astype(np.float32)


def test_stage1_features_equal_numpy_bit_for_bit():
    """The numba pass writes the features the networks were trained on: numpy's, bit for bit,
    on a specimen with precipitates (queries in any order, chunks of any size)."""
    s, types = _specimen(34, precipitates={"volume_fraction": 0.15, "radius_mean_nm": 2.5})
    xyz = s["xyz"].astype(np.float64)
    field = PlaneField((0.0, 0.0, 2 * np.pi / (A_NM / np.sqrt(8))), 0.0, tuple(xyz[:, :2].mean(0)), 0.05, 40.0)
    q = np.random.default_rng(3).permutation(len(xyz))[:6000]
    ctx = context(types, field.coherence)
    X = stage1(xyz, types, field, query=q, chunk=2500)
    order, *sums = PlaneReferredSums(xyz, types, field).in_cell_order(xyz[q])
    assert X.shape == (len(q), N_STAGE1)
    np.testing.assert_array_equal(X[order], stage1_features_numpy(*sums, ctx))


def stage2_moment_columns_numpy(xyz, z1, rows):
    """Stage 2's moment features as numpy wrote them before the kernel skipped the logit's first
    moments (Moments(first=2)) and the balls were summed shell by shell: every moment, cumsum."""
    p, zc = 1 / (1 + np.exp(-z1)), np.clip(z1, -8, 8) / 8
    M = Moments(xyz, np.column_stack([np.ones(len(p)), p, zc]), EDGES_S2_NM)(xyz[rows])
    Mc = np.cumsum(M, 1)
    f = [p[rows], zc[rows]]
    for s in range(M.shape[1]):
        n = np.maximum(M[:, s, 0, 0], 1)
        f += [M[:, s, 1, 0] / n, M[:, s, 2, 0] / n]
    for b in (2, 4):
        n = np.maximum(Mc[:, b, 0, 0], 1)
        r = EDGES_S2_NM[b + 1]
        d = Mc[:, b, 1, 1:] - Mc[:, b, 0, 1:] * (Mc[:, b, 1, 0] / n)[:, None]
        f += [np.abs(d[:, 2]) / (n * r), np.hypot(d[:, 0], d[:, 1]) / (n * r)]
    return np.column_stack(f).astype(np.float32)


def test_stage2_features_equal_numpy_bit_for_bit():
    r = np.random.default_rng(4)
    xyz = r.uniform(0, 8, (20000, 3))
    z1 = r.normal(0, 4, len(xyz))
    rows = r.choice(len(xyz), 3000, replace=False)
    L = r.uniform(0, 1, (len(rows), 12)).astype(np.float32)
    X = stage2_features(xyz, z1, L, (0.3, 0.2, 0.05), rows)
    assert X.shape == (len(rows), N_STAGE2)
    np.testing.assert_array_equal(X[:, :16], stage2_moment_columns_numpy(xyz, z1, rows))


def test_superlattice_features_separate_l12_from_fcc_ions():
    """The in-phase solute modulation of the 1.3 nm ball (in units of its random-solution sd) is
    ~1 in the matrix and several times that well inside precipitates; its quadrature stays noise."""
    s, types = _specimen(33, detector={"pole_tilt_deg": 1.0, "pole_tilt_azimuth_deg": 200.0},
                         precipitates={"volume_fraction": 0.15, "radius_mean_nm": 2.5})
    xyz = s["xyz"].astype(np.float64)
    field = fit_plane_field(xyz, types >= 0)
    X = stage1(xyz, types, field, chunk=20000)
    assert X.shape == (len(xyz), N_STAGE1) and np.isfinite(X).all()
    deep = np.zeros(len(xyz), bool)
    recon = np.asarray(s["centres"], float)
    from apt_cnn_hpc.crystal.detector import Instrument
    recon = Instrument(**s["instrument"]).reconstruct(recon.reshape(-1, 3))
    far = np.ones(len(xyz), bool)
    for c, r in zip(recon, s["radii"]):
        d = np.linalg.norm(xyz - c, axis=1)
        deep |= d < r - 1.3
        far &= d > r + 2.0
    inner = np.all((xyz > xyz.min(0) + 2) & (xyz < xyz.max(0) - 2), axis=1)
    inphase, quad = X[:, 3 * 8], X[:, 3 * 8 + 1]
    assert (deep & inner).sum() > 200 and (far & inner).sum() > 2000
    print(np.median(inphase[deep & inner]), np.median(inphase[far & inner]), np.median(quad[deep & inner]))
    assert np.median(inphase[deep & inner]) > 3 * np.median(inphase[far & inner])
    assert np.median(inphase[far & inner]) < 1.2 and np.median(quad[deep & inner]) < 1.2


def test_offset_from_voxel_sums_equals_the_per_ion_offset():
    """The distributed scan builds the local plane offset from the ranks' 1 nm voxel phasor sums
    (scan/ion_probability.py) and sends each rank the tiles of its box; it must equal the offset
    the ions give directly
    (lattice.local_offset), and the ions' sums must be summed in a cell order that does not
    depend on what else a rank holds (cells on multiples of the cell)."""
    from mpi4py import MPI

    from apt_cnn_hpc.scan.ion_probability import global_offset
    from apt_cnn_hpc.sdm import VoxelGrid
    from apt_cnn_hpc.sdm.lattice import PlaneField, local_offset
    from apt_cnn_hpc.sdm.visibility import phasor_sums
    r = np.random.default_rng(9)
    pos = r.uniform([-7.3, -6.1, 2.2], [8.9, 7.7, 21.4], (20000, 3))
    field = PlaneField((0.3, -0.2, 2 * np.pi / 0.1432), 1e-4, (0.5, 0.5), 0.05, 40.0)
    psi = field.phase(pos) + r.normal(0, 0.8, len(pos)) + 0.4 * np.sin(pos[:, 0] / 3)
    at = r.uniform([-7, -6, 3], [8, 7, 21], (500, 3))
    grid = VoxelGrid.covering(pos, 1.0)
    flat = np.ravel_multi_index(tuple(grid.index(pos).T), grid.shape)
    sums = phasor_sums(grid.shape, flat, psi)
    offset = global_offset(MPI.COMM_SELF, sums, np.zeros(3, int), grid, pos, field, [(pos.min(0), pos.max(0) + 1)])
    got = offset.at(at)
    want = local_offset(pos, psi, at, field.coherence)
    np.testing.assert_allclose(got, want, atol=1e-9)
    # a rank is sent only the tiles its box needs: the same bits inside the box (for positions
    # read from float32 records, as a scan's are: their offsets from tile corners are exact)
    at = at.astype(np.float32).astype(np.float64)
    got = offset.at(at)
    box = (np.array([-2.3, -1.1, 7.7]), np.array([3.1, 4.4, 13.9]))
    inside = np.all((at >= box[0]) & (at < box[1]), axis=1)
    crop = global_offset(MPI.COMM_SELF, sums, np.zeros(3, int), grid, pos, field, [box])
    assert crop.tiles.size < offset.tiles.size / 3 and inside.sum() > 20
    np.testing.assert_array_equal(crop.at(at[inside]), got[inside])
    # a region's partners are visited in the same order within a superset of the ions
    centre = pos.mean(0)
    q = centre + r.uniform(-2.0, 2.0, (40, 3))
    inner = np.all(np.abs(pos - centre) < 4.5, axis=1)       # covers every query's 2 nm ball
    a = plane_sums(q, pos, np.zeros(len(pos), np.int64), np.exp(0.5j * psi), np.exp(1j * psi), EDGES_NM)
    b = plane_sums(q, pos[inner], np.zeros(inner.sum(), np.int64), np.exp(0.5j * psi[inner]),
                   np.exp(1j * psi[inner]), EDGES_NM)
    assert inner.sum() < len(pos) / 2 and a[0].sum() > 0
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
