"""The fundamental {022} planes of a reconstruction as one phase field, fitted to the data.

The superlattice signal of L1_2 (every other {022} plane solute-rich) is only measurable against
the planes themselves: the phase of an ion's neighbours' superlattice modulation is referred to
the local position of the fundamental planes, so a tilted pole, curved planes or a z-scale error
of the reconstruction do not wash it out. The field is

    psi(r) = k . r - c k_z rho^2      (rho: lateral distance from the specimen's axis)

with the wavevector k (spacing and tilt) and the curvature c found by maximising the mean
coherent power of the fundamental planes in 1-2 nm neighbourhoods of a few thousand sampled
ions, plus a slowly varying local offset (phase of the smoothed fundamental phasor) for what the
two-parameter shape leaves. Where the planes are not significantly coherent (their best power
less than 3x the best the same search finds at wavenumbers with no planes, e.g. sigma_z of
0.08 nm and more) the nominal lattice is used and `significance` says so.
"""
from dataclasses import asdict, dataclass

import numpy as np

from .ion_kernels import _Partners, coherent_power, plane_sums

A_NM = 0.405                       # Al lattice parameter
TILE_NM = 2.0                      # tile of the local offset field
SIGNIFICANT = 3.0                  # best coherent power / best of the same search off the planes


@dataclass
class PlaneField:
    k: tuple                       # fundamental wavevector (1/nm, radians per nm)
    curvature: float               # c of psi = k . r - c k_z rho^2 (1/nm)
    centre_xy: tuple               # the axis rho is measured from (nm)
    coherence: float               # mean coherent power of the fundamental at 2 nm
    significance: float            # best power / look-elsewhere level (planes found when >= 3)

    @property
    def found(self) -> bool:
        return self.significance >= SIGNIFICANT

    @property
    def spacing_nm(self) -> float:
        return float(2 * np.pi / np.linalg.norm(self.k))

    @property
    def tilt_deg(self) -> float:
        k = np.asarray(self.k)
        return float(np.degrees(np.arctan2(np.hypot(k[0], k[1]), k[2])))

    def phase(self, pos) -> np.ndarray:
        """psi at positions [n, 3]."""
        k = np.asarray(self.k)
        rho2 = (pos[:, 0] - self.centre_xy[0]) ** 2 + (pos[:, 1] - self.centre_xy[1]) ** 2
        return pos @ k - self.curvature * k[2] * rho2

    @classmethod
    def from_dict(cls, d: dict) -> "PlaneField":
        return cls(tuple(d["k"]), float(d["curvature"]), tuple(d["centre_xy"]), float(d["coherence"]),
                   float(d["significance"]))

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(k=[float(v) for v in self.k], centre_xy=[float(v) for v in self.centre_xy],
                 spacing_nm=self.spacing_nm, tilt_deg=self.tilt_deg, found=self.found)
        return d


def _mean_power(query, pos, phases, radius) -> np.ndarray:
    """Mean over queries of (|sum_j exp(i phase_j)|^2 - n) / n^2 for each trial column of phases."""
    out, P = [], _Partners(np.zeros((0, 3)), pos, radius / 4)      # one cell list for every trial
    for ph in phases.T:
        cnt, _, F, _ = plane_sums(query, pos, np.zeros(len(pos), np.int64), np.zeros(len(pos), np.complex128),
                                  np.exp(1j * ph), [0.0, radius], partners=P)
        n = cnt[:, 0].sum(1)
        out.append(np.mean((np.abs(F[:, 0]) ** 2 - n) / np.maximum(n, 1) ** 2))
    return np.asarray(out)


def fit_plane_field(xyz, ranged, spacing_nm=A_NM / np.sqrt(8), n_query=1500, seed=0) -> PlaneField:
    """Fit k, curvature and centre to the ranged ions of a reconstruction (see module doc).
    Steps: spacing along z (+-4.5 %, r = 1 nm); lateral k on a 0.3 deg then 0.05 deg grid
    (r = 2 nm); curvature from the local lateral k of 4 x 4 tiles; spacing again (+-1 %)."""
    pos = np.ascontiguousarray(xyz[ranged], np.float64)
    centre = pos[:, :2].mean(0)
    rng = np.random.default_rng(seed)
    lo, hi = pos.min(0) + 2.0, pos.max(0) - 2.0
    inner = np.flatnonzero(np.all((pos > lo) & (pos < hi), axis=1))
    inner = inner if len(inner) >= 50 else np.arange(len(pos))
    qp = pos[rng.choice(inner, min(n_query, len(inner)), replace=False)]
    nominal = PlaneField((0.0, 0.0, 2 * np.pi / spacing_nm), 0.0, tuple(centre), 0.0, 0.0)
    if len(qp) < 20:
        return nominal
    trial = 2 * np.pi / (spacing_nm * np.linspace(0.955, 1.045, 37))
    kz = trial[int(np.argmax(_mean_power(qp, pos, np.outer(pos[:, 2], trial), 1.0)))]
    coarse = kz * np.radians(0.3)
    # the look-elsewhere level: the same coarse search at wavenumbers no plane family of the
    # pole has (0.8 and 0.9 k), whose best mean power is noise picked from 625 trials
    null = max(coherent_power(qp, pos, 2.0, 0.0, 0.0, kz * f, coarse * f, 12).mean(0).max() for f in (0.8, 0.9))
    kx = ky = 0.0
    for step, na in ((coarse, 12), (kz * np.radians(0.05), 6)):
        P = coherent_power(qp, pos, 2.0, kx, ky, kz, step, na)
        mean = P.mean(0)
        a, b = np.unravel_index(np.argmax(mean), mean.shape)
        if na == 12:
            signif = float(mean[a, b] / max(null, 1e-9))
        kx, ky = kx + (a - na) * step, ky + (b - na) * step
    if signif < SIGNIFICANT:
        return PlaneField(nominal.k, 0.0, tuple(centre), float(mean[a, b]), signif)
    # curvature: k_x = kx0 - 2 c kz x, k_y = ky0 - 2 c kz y over 4 x 4 lateral tiles (least squares)
    dk = kz * np.radians(0.1)
    P = coherent_power(qp, pos, 2.0, kx, ky, kz, dk, 6)
    span = np.ptp(qp[:, :2], 0) + 1e-9
    tiles = np.minimum(((qp[:, :2] - qp[:, :2].min(0)) / span * 4).astype(int), 3)
    rows, rhs = [], []
    for tx in range(4):
        for ty in range(4):
            sel = (tiles[:, 0] == tx) & (tiles[:, 1] == ty)
            if sel.sum() < 20:
                continue
            a, b = np.unravel_index(np.argmax(P[sel].mean(0)), P.shape[1:])
            x, y = qp[sel, :2].mean(0) - centre
            rows += [[1, 0, x], [0, 1, y]]
            rhs += [kx + (a - 6) * dk, ky + (b - 6) * dk]
    curvature = 0.0
    if len(rows) >= 8:
        kx, ky, slope = np.linalg.lstsq(np.asarray(rows, float), np.asarray(rhs), rcond=None)[0]
        curvature = float(-slope / (2 * kz))
    k = np.array([kx, ky, kz])
    field = PlaneField(tuple(k), curvature, tuple(centre), 0.0, signif)
    scale = np.linspace(0.99, 1.01, 21)
    psi = field.phase(pos)
    power = _mean_power(qp, pos, np.outer(psi, scale), 2.0)
    best = int(np.argmax(power))
    return PlaneField(tuple(k * scale[best]), curvature, tuple(centre), float(power[best]), signif)


@dataclass
class OffsetField:
    """The smoothed fundamental phasor on 2 nm tiles whose corner `origin` is a multiple of the
    tile (so any subset of the data, and a grid of 1 nm voxel sums, tiles space the same way)."""
    origin: np.ndarray
    tiles: np.ndarray             # complex [nx, ny, nz], Gaussian-smoothed sums

    @classmethod
    def from_sums(cls, sums: np.ndarray, origin, n_ions: int, extent_nm, coherence: float) -> "OffsetField":
        """From the unsmoothed tile sums of exp(i psi) of `n_ions` ions spanning `extent_nm`: the
        smoothing holds enough ions that the smoothed phasor has a signal-to-noise ratio of about 5."""
        from scipy import ndimage
        density = n_ions / max(float(np.prod(extent_nm)), 1e-9)
        smooth_nm = float(np.clip((25.0 / max(coherence, 1e-6) / (density * (2 * np.pi) ** 1.5)) ** (1 / 3), 2.0, 8.0))
        parts = [ndimage.gaussian_filter(part, smooth_nm / TILE_NM, mode="nearest") for part in (sums.real, sums.imag)]
        return cls(np.asarray(origin, np.float64), parts[0] + 1j * parts[1])

    def crop(self, lo_nm, hi_nm) -> "OffsetField":
        """The tiles positions in [lo_nm, hi_nm) interpolate between, with their origin: `at` gives
        the same bits there for positions read from float32 records (tile corners are multiples of
        the tile, so their offsets from either origin are exact)."""
        i0 = np.clip(np.floor((np.asarray(lo_nm) - self.origin) / TILE_NM).astype(int) - 1, 0, self.tiles.shape)
        i1 = np.clip(np.floor((np.asarray(hi_nm) - self.origin) / TILE_NM).astype(int) + 2, i0, self.tiles.shape)
        return OffsetField(self.origin + i0 * TILE_NM, self.tiles[tuple(slice(a, b) for a, b in zip(i0, i1))].copy())

    def at(self, pos) -> np.ndarray:
        """exp(i psi0) at positions [n, 3], linearly interpolated between tile centres."""
        from scipy import ndimage
        coords = ((np.asarray(pos, np.float64) - self.origin) / TILE_NM - 0.5).T
        z = sum(w * ndimage.map_coordinates(part, coords, order=1, mode="nearest")
                for w, part in ((1, self.tiles.real), (1j, self.tiles.imag)))
        return z / np.maximum(np.abs(z), 1e-12)


def tile_origin(lo) -> np.ndarray:
    return np.floor(np.asarray(lo, np.float64) / TILE_NM) * TILE_NM


def tile_shape(origin, hi) -> tuple:
    return tuple(int(v) for v in np.floor((np.asarray(hi) - origin) / TILE_NM).astype(int) + 1)


def tile_sums(pos, re, im, origin, shape) -> np.ndarray:
    """Complex sums of (re + i im) over the 2 nm tiles of `origin`/`shape` holding each position
    (positions outside the tiles carry nothing)."""
    t = np.floor((np.asarray(pos, np.float64) - origin) / TILE_NM).astype(np.int64)
    inside = np.all((t >= 0) & (t < np.asarray(shape)), axis=1)
    flat = np.ravel_multi_index(tuple(t[inside].T), shape)
    n = int(np.prod(shape))
    return (np.bincount(flat, re[inside], minlength=n) + 1j * np.bincount(flat, im[inside], minlength=n)).reshape(shape)


def local_offset(pos, psi, at, coherence: float) -> np.ndarray:
    """exp(i psi0) at positions `at`: the phase of the Gaussian-smoothed complex mean of
    exp(i psi) of the ions `pos` over 2 nm tiles (OffsetField), linearly interpolated."""
    origin = tile_origin(pos.min(0))
    shape = tile_shape(origin, pos.max(0))
    e = np.exp(1j * psi)
    sums = tile_sums(pos, e.real, e.imag, origin, shape)
    return OffsetField.from_sums(sums, origin, len(pos), np.ptp(pos, 0), coherence).at(at)
