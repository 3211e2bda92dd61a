"""A small simulated reconstruction of one crystal: what one library map is made from."""
from dataclasses import dataclass

import numpy as np

from .detector import apply_efficiency, apply_noise, draw_species
from .lattice import lattice_sites
from .orientation import orientation_matrix
from .structure import Structure


@dataclass
class BlockParams:
    sigma_xy_nm: float
    sigma_z_nm: float
    efficiency: float
    azimuth_deg: float = 0.0
    tilt_deg: float = 0.0
    pole: tuple = (0, 1, 1)
    x_direction: tuple = (1, 0, 0)


@dataclass
class Inclusion:
    """A coherent ordered sphere inside the block (a precipitate cut by the cube)."""
    structure: Structure
    centre_nm: np.ndarray
    radius_nm: float
    variant: int = 0


def simulate_block(structure: Structure, p: BlockParams, half_size_nm: float, rng,
                   inclusion: Inclusion | None = None):
    """Atoms of `structure` in the cube [-h, h)^3 after rotation, noise and random deletion.

    The lattice is generated in a margin of 3 sigma around the cube so that noise moves atoms
    in and out of it as in a real reconstruction. Sites inside `inclusion` (judged on their true
    positions) take the inclusion's species. Returns (positions [n,3], species index [n],
    species names, in_inclusion [n] bool).
    """
    rot = orientation_matrix(p.pole, p.x_direction, p.azimuth_deg, p.tilt_deg)
    margin = 3 * max(p.sigma_xy_nm, p.sigma_z_nm)
    h = half_size_nm
    # a random origin shift so that the cube does not always start on the same lattice site
    shift = rng.random(3) * structure.a_nm
    pos, basis, frac = lattice_sites(structure.sites, structure.a_nm, rot, [-h - margin] * 3,
                                     [h + margin] * 3, origin_nm=shift)
    names = list(structure.species)
    if inclusion is not None:
        names += [s for s in inclusion.structure.species if s not in names]
    spec = draw_species(structure.sublattice[basis], structure.occupancy, names, rng)
    inside = np.zeros(len(pos), bool)
    if inclusion is not None:
        inside = np.sum((pos - inclusion.centre_nm) ** 2, axis=1) < inclusion.radius_nm ** 2
        sub = inclusion.structure.site_sublattice(frac[inside], inclusion.variant)
        spec[inside] = draw_species(sub, inclusion.structure.occupancy, names, rng)
    keep = apply_efficiency(len(pos), p.efficiency, rng)
    pos = apply_noise(pos[keep], p.sigma_xy_nm, p.sigma_z_nm, rng)
    spec, inside = spec[keep], inside[keep]
    ok = np.all((pos >= -h) & (pos < h), axis=1)
    return pos[ok], spec[ok], names, inside[ok]
