"""Coarse search for the normal of the planes over a cap of directions (tilts up to ~20 deg and
an unknown depth scale): a Welch estimate of the power spectrum of the ion density on the shell
|k| ~ 2 pi / d.

Why blocks: Hann-windowed 4 nm blocks add their power incoherently, so curved planes, or planes
resolved in only part of the volume, still give one peak, and the window keeps the mean density
(the huge k = 0 term) from leaking to the planes' wavenumber. Why this way of computing it: each
ion is multiplied by exp(-i K0 z) (which moves the shell near k_z = 0) and binned on a 0.1 nm
grid, and the spectrum is evaluated only on the cap by three separable matrix products; the
binning costs no accuracy at the planes' own wavenumber (the phase K0 z is exact) and nothing
else of the lattice (resolved at all) falls on the cap. The peak's height over the spread of the
cap's noise is reported; the refinement (pole.py) decides whether the planes are real.
"""
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import InputError

BLOCK_NM = 4.0                 # side of a Welch block
STEP_NM = 2.0                  # block stride (50 % overlap)
BIN_NM = 0.1                   # grid of the demodulated density
DK_LATERAL = 0.75              # 1/nm between sampled lateral wavevector components (~1 deg)
DK_AXIAL = 0.75                # 1/nm between sampled axial components
MAX_BLOCKS = 400               # a random subset of a larger reconstruction's blocks


@dataclass
class Search:
    pole: np.ndarray           # unit normal of the planes (input frame), k_z > 0
    spacing_nm: float          # 2 pi / |k| at the peak
    peak: float                # excess power at the peak (units of the squared plane contrast)
    zscore: float              # (peak - median of the cap) / robust sd of the cap
    kx: np.ndarray             # lateral axes of the score map (1/nm)
    ky: np.ndarray
    score_map: np.ndarray      # [kx, ky]: max over the shell's k_z of the excess power
    n_blocks: int


def _blocks(pos, rng):
    """(origins, member index lists) of the blocks fully inside the bounding box that are at least
    70 % as full as the median block (a cone's empty corners are left out)."""
    lo, hi = pos.min(0), pos.max(0)
    starts = [np.arange(lo[a], hi[a] - BLOCK_NM + 1e-9, STEP_NM) for a in range(3)]
    if any(len(s) == 0 for s in starts):
        raise InputError(None, f"the reconstruction ({np.ptp(pos, 0).round(1).tolist()} nm) is smaller than "
                               f"one {BLOCK_NM:g} nm search block in some direction")
    cell = np.floor((pos - lo) / STEP_NM).astype(np.int64)
    dims = cell.max(0) + 1
    flat = np.ravel_multi_index(tuple(cell.T), dims)
    order = np.argsort(flat, kind="stable")
    bounds = np.searchsorted(flat[order], np.arange(np.prod(dims) + 1))
    counts = np.diff(bounds).reshape(dims)
    origins, members, sizes = [], [], []
    for i in range(len(starts[0])):
        for j in range(len(starts[1])):
            for k in range(len(starts[2])):
                n = counts[i:i + 2, j:j + 2, k:k + 2].sum()
                origins.append((starts[0][i], starts[1][j], starts[2][k]))
                members.append((i, j, k))
                sizes.append(n)
    sizes = np.asarray(sizes)
    keep = np.flatnonzero(sizes >= 0.7 * np.median(sizes[sizes > 0]))
    if len(keep) > MAX_BLOCKS:
        keep = np.sort(rng.choice(keep, MAX_BLOCKS, replace=False))

    def ions(b):
        i, j, k = members[b]
        cells = [np.ravel_multi_index((a, c, e), dims) for a in (i, i + 1) for c in (j, j + 1) for e in (k, k + 1)
                 if a < dims[0] and c < dims[1] and e < dims[2]]
        return np.concatenate([order[bounds[c]:bounds[c + 1]] for c in cells])

    return [np.asarray(origins[b]) for b in keep], [ions(b) for b in keep]


def search_pole(pos, spacing_nm: float, max_tilt_deg: float = 20.0, scale=(0.92, 1.09), seed: int = 0) -> Search:
    """Search directions up to `max_tilt_deg` from z and wavenumbers 2 pi / spacing x `scale`
    (the depth scale is unknown) for the strongest plane family of ions at `pos` [n, 3]."""
    K = 2 * np.pi / spacing_nm
    kmax = K * scale[1] * np.sin(np.radians(max_tilt_deg)) + DK_LATERAL
    kz_lo, kz_hi = K * scale[0] * np.cos(np.radians(max_tilt_deg)), K * scale[1]
    K0 = 0.5 * (kz_lo + kz_hi)
    kl = np.arange(-np.ceil(kmax / DK_LATERAL), np.ceil(kmax / DK_LATERAL) + 1) * DK_LATERAL
    half = np.ceil((kz_hi - K0) / DK_AXIAL) + 1
    dkz = np.arange(-half, half + 1) * DK_AXIAL
    nb = int(round(BLOCK_NM / BIN_NM))
    centres = (np.arange(nb) + 0.5) * BIN_NM
    Ex = np.exp(-1j * np.outer(centres, kl))              # [bin, k]
    Ez = np.exp(-1j * np.outer(centres, dkz))
    hann = np.sin(np.pi * centres / BLOCK_NM) ** 2
    rng = np.random.default_rng(seed)
    origins, members = _blocks(pos, rng)
    acc = np.zeros((len(kl), len(kl), len(dkz)))
    noise = norm = 0.0
    # many small products: BLAS threads only spin against each other (20x slower on a busy node)
    with threadpool_limits(limits=1, user_api="blas"):
        for origin, idx in zip(origins, members):
            u = pos[idx] - origin
            b = np.minimum((u / BIN_NM).astype(np.int64), nb - 1)
            # the window at the bin centre (the power of a bin's ions), the phase exact
            w = hann[b[:, 0]] * hann[b[:, 1]] * hann[b[:, 2]]
            ph = w * np.exp(-1j * K0 * u[:, 2])
            flat = np.ravel_multi_index(tuple(b.T), (nb, nb, nb))
            g = (np.bincount(flat, ph.real, nb ** 3) + 1j * np.bincount(flat, ph.imag, nb ** 3)).reshape(nb, nb, nb)
            F = np.einsum("abc,cz->abz", g, Ez, optimize=True)
            F = np.einsum("abz,by->ayz", F, Ex, optimize=True)
            F = np.einsum("ayz,ax->xyz", F, Ex, optimize=True)
            acc += F.real ** 2 + F.imag ** 2
            noise += float(np.sum(w * w))
            norm += float(np.sum(w)) ** 2
    power = (acc - noise) / max(norm, 1e-12)
    KX, KY, KZ = np.meshgrid(kl, kl, K0 + dkz, indexing="ij")
    kabs = np.sqrt(KX ** 2 + KY ** 2 + KZ ** 2)
    cap = ((kabs >= K * scale[0]) & (kabs <= K * scale[1])
           & (np.hypot(KX, KY) <= KZ * np.tan(np.radians(max_tilt_deg))))
    masked = np.where(cap, power, -np.inf)
    a, b, c = np.unravel_index(np.argmax(masked), masked.shape)
    vals = power[cap]
    med = float(np.median(vals))
    sd = float(1.4826 * np.median(np.abs(vals - med))) or 1e-12
    k = np.array([kl[a], kl[b], K0 + dkz[c]])
    # sub-grid peak: a parabola through the peak and its neighbours along each axis
    for axis, (i, step) in enumerate(((a, DK_LATERAL), (b, DK_LATERAL), (c, DK_AXIAL))):
        sl = [a, b, c]
        if 0 < i < power.shape[axis] - 1:
            sl_m, sl_p = list(sl), list(sl)
            sl_m[axis], sl_p[axis] = i - 1, i + 1
            y0, ym, yp = power[tuple(sl)], power[tuple(sl_m)], power[tuple(sl_p)]
            den = ym - 2 * y0 + yp
            if den < 0:
                k[axis] += float(np.clip(0.5 * (ym - yp) / den, -0.5, 0.5)) * step
    score = np.where(cap, power, np.nan)
    score_map = np.nanmax(np.where(np.isnan(score), -np.inf, score), axis=2)
    score_map[~np.isfinite(score_map)] = np.nan
    return Search(k / np.linalg.norm(k), float(2 * np.pi / np.linalg.norm(k)), float(power[a, b, c]),
                  float((power[a, b, c] - med) / sd), kl, kl, score_map, len(origins))
