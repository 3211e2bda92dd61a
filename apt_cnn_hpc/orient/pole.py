"""The pole of a reconstruction and the transform that puts it on z at the expected spacing.

What is reported is the data as given: `pole_in_input` is the normal of the planes in the input
coordinates and `spacing_measured_nm` their spacing along it. A depth-scale error s of the
reconstruction (z_recon = s z_true) tips a tilted pole's apparent normal towards z and changes
the apparent spacing, so both differ slightly from the crystal's; the output is made to have the
planes normal to z at the expected spacing: output = (input - centre) @ rotation.T, then
z * z_scale with z_scale = expected / measured spacing. Read as a stretch along the input z (the
usual reconstruction error), the same measurement also gives s itself (`depth_scale_input`):
the k vector's lateral part is unaffected, so s = sqrt(K^2 - k_x^2 - k_y^2) / k_z with
K = 2 pi / expected spacing.

Steps: the coarse Welch search (search.py) over tilts up to 20 deg; rotate the found normal onto
z and let `fit_plane_field` (sdm/lattice.py: lateral k to 0.05 deg, maximising the coherent power
of the planes, i.e. the sharpest planes) refine the direction; its look-elsewhere significance is
`plane_signal`, and below SIGNIFICANT (3), or with a coarse peak less than SEARCH_ZSCORE (6) robust
sd above the cap (pure noise: 3-5), no pole is reported. Last, with the refined normal on z,
the spacing from the coherent power of 4000 neighbourhoods on a 0.1 % grid of wavenumbers
(kernels.py).
"""
from dataclasses import dataclass, field

import numpy as np

from ..crystal.orientation import axis_rotation
from ..sdm.lattice import A_NM, SIGNIFICANT, PlaneField, fit_plane_field
from ..sdm.ion_kernels import axial_power
from .search import Search, search_pole

SPACING_022_NM = A_NM / np.sqrt(8)    # the {022} planes normal to the <011> pole of Al
MAX_TILT_DEG = 20.0
SEARCH_ZSCORE = 6.0                   # the coarse peak must also stand this far out (noise: 3-5)
FIT_BOX_NM = 24.0                     # the refinement sees at most a central cube this wide (its cost)


def rotation_to_z(p) -> np.ndarray:
    """The smallest rotation R with R @ p = z (about the axis p x z): the in-plane directions
    move as little as the pole's tilt requires."""
    p = np.asarray(p, float) / np.linalg.norm(p)
    axis = np.cross(p, [0.0, 0.0, 1.0])
    if np.linalg.norm(axis) < 1e-12:
        return np.eye(3)
    return axis_rotation(axis, float(np.degrees(np.arccos(np.clip(p[2], -1.0, 1.0)))))


@dataclass
class Orientation:
    centre_nm: np.ndarray
    pole_in_input: np.ndarray
    spacing_measured_nm: float
    spacing_expected_nm: float
    plane_signal: float
    search: Search
    fits: list = field(default_factory=list)     # PlaneField of each refinement pass

    @property
    def found(self) -> bool:
        return self.plane_signal >= SIGNIFICANT and self.search.zscore >= SEARCH_ZSCORE

    @property
    def rotation(self) -> np.ndarray:
        return rotation_to_z(self.pole_in_input)

    @property
    def z_scale(self) -> float:
        return self.spacing_expected_nm / self.spacing_measured_nm

    @property
    def tilt_deg(self) -> float:
        return float(np.degrees(np.arccos(np.clip(self.pole_in_input[2], -1, 1))))

    @property
    def depth_scale_input(self) -> float:
        """s of z_recon = s z_true, if the whole spacing error is a stretch along the input z."""
        k = 2 * np.pi / self.spacing_measured_nm * self.pole_in_input
        K = 2 * np.pi / self.spacing_expected_nm
        return float(np.sqrt(max(K ** 2 - k[0] ** 2 - k[1] ** 2, 0.0)) / k[2])

    def transform(self, xyz) -> np.ndarray:
        """Output coordinates of input positions [n, 3] (float64)."""
        out = (np.asarray(xyz, np.float64) - self.centre_nm) @ self.rotation.T
        out[:, 2] *= self.z_scale
        return out

    def to_dict(self) -> dict:
        s = self.search
        return {
            "pole_in_input": [float(v) for v in self.pole_in_input],
            "tilt_deg": self.tilt_deg,
            "tilt_azimuth_deg": float(np.degrees(np.arctan2(self.pole_in_input[1], self.pole_in_input[0])) % 360),
            "rotation": self.rotation.tolist(),
            "centre_nm": [float(v) for v in self.centre_nm],
            "z_scale": self.z_scale,
            "transform": "output = (input - centre_nm) @ rotation.T, then output z *= z_scale",
            "spacing_measured_nm": self.spacing_measured_nm,
            "spacing_expected_nm": self.spacing_expected_nm,
            "depth_scale_input": self.depth_scale_input,
            "plane_signal": self.plane_signal,
            "plane_signal_threshold": SIGNIFICANT,
            "plane_signal_meaning": "coherent power of the planes at the refined wavevector over the best "
                                    "the same search finds at 0.8 and 0.9 of it (no planes there); "
                                    f"a pole is reported when >= {SIGNIFICANT:g} and the search peak's "
                                    f"zscore >= {SEARCH_ZSCORE:g}",
            "in_plane_direction": "undetermined (the smallest rotation taking the pole to z)",
            "search": {"pole": [float(v) for v in s.pole], "spacing_nm": s.spacing_nm, "peak_power": s.peak,
                       "peak_zscore": s.zscore, "blocks": s.n_blocks, "max_tilt_deg": MAX_TILT_DEG},
            "refinement": [f.to_dict() for f in self.fits],
        }


def measure_spacing(pos, spacing_nm: float, n_query: int = 4000, span: float = 0.03, seed: int = 0) -> float:
    """Spacing of planes normal to z near `spacing_nm`: the peak of the mean coherent power of
    2 nm neighbourhoods of `n_query` inner ions over +-`span` in 0.1 % steps (a parabola through
    the points within 0.6 % of the best). More queries than fit_plane_field affords, on one axis,
    because the depth scale is what the later stages are most sensitive to."""
    rng = np.random.default_rng(seed + 1)
    lo, hi = pos.min(0) + 2.0, pos.max(0) - 2.0
    inner = np.flatnonzero(np.all((pos > lo) & (pos < hi), axis=1))
    inner = inner if len(inner) >= 50 else np.arange(len(pos))
    q = pos[rng.choice(inner, min(n_query, len(inner)), replace=False)]
    k0 = 2 * np.pi / spacing_nm
    kz = k0 * np.linspace(1 - span, 1 + span, int(round(2 * span / 0.001)) + 1)
    P = axial_power(q, pos, 2.0, kz).mean(0)
    best = int(np.argmax(P))
    near = np.abs(kz / kz[best] - 1) <= 0.006
    if near.sum() >= 5 and 0 < best < len(kz) - 1:
        c2, c1, _ = np.polyfit(kz[near] - kz[best], P[near], 2)
        if c2 < 0:
            return float(2 * np.pi / (kz[best] + np.clip(-c1 / (2 * c2), -0.006 * k0, 0.006 * k0)))
    return float(2 * np.pi / kz[best])


def find_pole(xyz, ranged, spacing_nm: float = SPACING_022_NM, passes: int = 1, n_query: int = 800,
              seed: int = 0) -> Orientation:
    """Pole, spacing and plane signal of the ranged ions of a reconstruction (module doc)."""
    xyz = np.asarray(xyz, np.float64)
    centre = xyz.mean(0)
    pos = xyz[ranged] - centre
    s = search_pole(pos, spacing_nm, MAX_TILT_DEG, seed=seed)
    pole, spacing, fits = s.pole, s.spacing_nm, []
    central = np.all(np.abs(pos - np.median(pos, 0)) <= FIT_BOX_NM / 2, axis=1)
    for _ in range(passes):
        R = rotation_to_z(pole)
        rp = pos @ R.T
        f: PlaneField = fit_plane_field(rp, central, spacing_nm=spacing, n_query=n_query, seed=seed)
        fits.append(f)
        if not f.found:
            break
        k = np.asarray(f.k)
        pole, spacing = R.T @ (k / np.linalg.norm(k)), f.spacing_nm
    if fits[-1].found:
        spacing = measure_spacing(pos @ rotation_to_z(pole).T, spacing, seed=seed)
    return Orientation(centre, pole, float(spacing), float(spacing_nm), float(fits[-1].significance), s, fits)
