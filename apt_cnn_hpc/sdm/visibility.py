"""Where the lattice planes are resolved: a per-voxel plane-visibility score, and the superlattice
test that tells a real precipitate from a call made where no planes can be seen.

Score. Every ranged ion carries the phasor exp(i psi) of the fitted fundamental {022} planes
(sdm/lattice.py: spacing, tilt, curvature). In a window of N ions the power |sum|^2 / N is
exponential with mean 1 where no planes are resolved, and about N A^2 where they are (A: the
planes' coherent amplitude, exp(-k^2 sigma_z^2 / 2) times the lateral and background losses).
A voxel's score is, at each window size (5, 9, 13 nm), the 5th largest power of the 8 windows
that have the voxel at one of their corners (one per octant), and the best of the three sizes.
One-sided windows keep a sharp region's planes from leaking into a blurred neighbour: at a flat
boundary at most 4 of the 8 windows reach across it. The larger windows resolve planes too faint
for 5 nm at low efficiency (sigma_z 0.05-0.06 nm at 35 %). Planes are resolved where the score is
>= THRESHOLD (the null exceeds 6 with probability e^-6 = 0.25 % per window).

Superlattice test. Inside L1_2 every other {022} plane is solute-poor, so the solute fraction of
a precipitate's ions is modulated at half the fundamental wavenumber; the same power statistic
of (s - c) exp(i psi / 2) over a precipitate's ions (s = 1 for solute, c their mean) has mean 1
without order; where the planes are sharp exp(i psi / 2) is nearly +-1, so its tail is that of
chi^2 with one degree of freedom, and SUPERLATTICE_THRESHOLD = 9 keeps chance below 0.3 %. A
precipitate whose ions carry it was seen, even where the fundamental of the matrix around it is
too faint to be resolved."""
import numpy as np

from .voxel import window_sums

WINDOWS_NM = (5, 9, 13)
REACH = max(WINDOWS_NM) - 1        # voxels a score reads on either side
THRESHOLD = 6.0
SUPERLATTICE_THRESHOLD = 9.0
MEANING = ("fundamental {022} coherent power at the fitted planes, in units of its no-planes mean, "
           "the 5th largest of the 8 one-sided windows of 5, 9 and 13 voxels around the voxel (best size); "
           f"planes resolved where >= {THRESHOLD:g}")


def phasor_sums(shape, flat_voxel: np.ndarray, psi: np.ndarray) -> np.ndarray:
    """[3, *shape] float64: ions, sum cos psi and sum sin psi per voxel (`flat_voxel`: each ion's
    flat voxel index); summed in the ions' order, so the same ions give the same bits."""
    n = int(np.prod(shape))
    return np.stack([np.bincount(flat_voxel, w, minlength=n).reshape(shape)
                     for w in (None, np.cos(psi), np.sin(psi))]).astype(np.float64)


def plane_visibility(sums: np.ndarray) -> np.ndarray:
    """Per-voxel score (float32) from voxel phasor sums (the grid is 0 beyond `sums`). A voxel's
    score reads sums up to REACH voxels away, summed in a fixed order: a box with REACH voxels
    around it (or the grid's edge) gives the same bits as the whole grid."""
    best = np.zeros(sums.shape[1:])
    corners = [(a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1)]
    for w in WINDOWS_NM:
        # window sums starting at every index -(w-1)..n-1: the window with a voxel at its low corner
        # starts at the voxel, the one with it at its high corner w - 1 before it
        n, c, s = (window_sums(np.pad(a, w - 1), w) for a in sums)
        powers = []
        for corner in corners:
            at = tuple(slice((1 - k) * (w - 1), (1 - k) * (w - 1) + size) for k, size in zip(corner, best.shape))
            with np.errstate(invalid="ignore", divide="ignore"):
                powers.append(np.where(n[at] > 0.5, (c[at] ** 2 + s[at] ** 2) / n[at], 0.0))
        np.maximum(best, np.sort(np.stack(powers), axis=0)[-5], out=best)
    return best.astype(np.float32)


def superlattice_power(psi: np.ndarray, solute: np.ndarray) -> float:
    """Power of the solute modulation at half the fundamental wavenumber over these ions, in units
    of its no-order mean (0 when there is no solute contrast)."""
    s = solute.astype(np.float64)
    c = s.mean() if len(s) else 0.0
    if not 0 < c < 1:
        return 0.0
    z = np.sum((s - c) * np.exp(0.5j * psi))
    return float(abs(z) ** 2 / (len(s) * c * (1 - c)))
