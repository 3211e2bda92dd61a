"""What the instrument and the reconstruction do to a crystal: one field per artefact.

Detection efficiency (random deletion), lateral and depth resolution (Gaussian noise, wider in x,
y than in z), a pole tipped off the analysis axis, curved planes, a depth scale that is off before
calibration, local magnification at precipitate interfaces (trajectory aberrations) and random
background ions. Specimens and library maps draw the same artefacts through this one module.
"""
from dataclasses import dataclass, fields

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class Instrument:
    efficiency: float = 0.55
    sigma_xy_nm: float = 0.35
    sigma_z_nm: float = 0.03
    pole_tilt_deg: float = 0.0           # angle of the crystal pole from z
    pole_tilt_azimuth_deg: float = 0.0   # direction in the xy plane the pole tips towards
    curvature_radius_nm: float = 0.0     # planes curved with this radius (z += r_xy^2 / 2R); 0 = flat
    z_scale: float = 1.0                 # reconstructed depth / true depth (1.03: spacing 3 % long)
    interface_magnification: float = 1.0  # lateral scale of precipitates' ions about their centres
    background_fraction: float = 0.0     # extra ions at random positions, per real ion

    @classmethod
    def from_dict(cls, d: dict, where="detector config") -> "Instrument":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise InputError(where, f"unknown detector setting(s) {sorted(unknown)} (known: {sorted(known)})")
        try:
            inst = cls(**{k: float(v) for k, v in d.items()})
        except (TypeError, ValueError):
            raise InputError(where, f"detector settings must be numbers, got {d}") from None
        inst.check(where)
        return inst

    def check(self, where):
        if not 0 < self.efficiency <= 1:
            raise InputError(where, f"efficiency must be in (0, 1], got {self.efficiency}")
        if min(self.sigma_xy_nm, self.sigma_z_nm, self.curvature_radius_nm, self.background_fraction) < 0:
            raise InputError(where, "sigmas, curvature_radius_nm and background_fraction must be >= 0")
        if not 0.5 <= self.z_scale <= 2 or not 0.5 <= self.interface_magnification <= 1.5:
            raise InputError(where, "z_scale must be in [0.5, 2] and interface_magnification in [0.5, 1.5]")
        if not 0 <= self.pole_tilt_deg <= 90:
            raise InputError(where, f"pole_tilt_deg must be in [0, 90], got {self.pole_tilt_deg}")

    def detect(self, pos: np.ndarray, rng, centres=None, radii=None) -> tuple[np.ndarray, np.ndarray]:
        """(kept mask, reconstructed positions of the kept atoms) of atoms at true lab `pos`."""
        keep = apply_efficiency(len(pos), self.efficiency, rng)
        p = pos[keep]
        if self.interface_magnification != 1.0 and centres is not None and len(centres):
            p = magnify_interfaces(p, centres, radii, self.interface_magnification)
        p = apply_noise(p, self.sigma_xy_nm, self.sigma_z_nm, rng)
        return keep, self.reconstruct(p)

    def reconstruct(self, p: np.ndarray) -> np.ndarray:
        """The reconstruction's own distortions of (noisy) positions: curved planes, depth scale."""
        if self.curvature_radius_nm > 0 or self.z_scale != 1.0:
            p = p.copy()
            if self.curvature_radius_nm > 0:
                p[:, 2] += (p[:, 0] ** 2 + p[:, 1] ** 2) / (2 * self.curvature_radius_nm)
            p[:, 2] *= self.z_scale
        return p


def apply_noise(pos: np.ndarray, sigma_xy: float, sigma_z: float, rng) -> np.ndarray:
    """Gaussian displacement, wider laterally (x, y) than in depth (z), as in a reconstruction."""
    noise = rng.standard_normal(pos.shape)
    noise[:, :2] *= sigma_xy
    noise[:, 2] *= sigma_z
    return pos + noise


def apply_efficiency(n: int, efficiency: float, rng) -> np.ndarray:
    """Boolean mask of detected atoms (random deletion with probability 1 - efficiency)."""
    return rng.random(n) < efficiency


def magnify_interfaces(pos: np.ndarray, centres: np.ndarray, radii: np.ndarray, m: float) -> np.ndarray:
    """Trajectory aberrations at interfaces: ions of a precipitate land laterally m times further
    from its axis (m > 1: a low-field phase spreads out and looks less dense; m < 1: it focuses);
    outside, the lateral displacement decays as (r / rho)^3, continuous at the interface."""
    out = pos.copy()
    for c, r in zip(np.asarray(centres), np.asarray(radii)):
        d = pos - c
        rho = np.sqrt(np.sum(d * d, axis=1))
        near = np.flatnonzero(rho < 4 * r)
        g = np.where(rho[near] <= r, m, 1 + (m - 1) * (r / np.maximum(rho[near], 1e-12)) ** 3)
        out[near, :2] += d[near, :2] * (g - 1)[:, None]
    return out


def draw_species(sublattice: np.ndarray, occupancy: list, species: list, rng) -> np.ndarray:
    """Species index (into `species`) per site, drawn from its sublattice's occupancy."""
    out = np.empty(len(sublattice), dtype=np.int16)
    u = rng.random(len(sublattice))
    for k, occ in enumerate(occupancy):
        sel = sublattice == k
        cum = np.cumsum(list(occ.values()))
        idx = np.minimum(np.searchsorted(cum, u[sel], side="right"), len(cum) - 1)
        out[sel] = np.array([species.index(s) for s in occ], dtype=np.int16)[idx]
    return out
