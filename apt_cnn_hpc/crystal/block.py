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


def simulate_block(structure: Structure, p: BlockParams, half_size_nm: float, rng):
    """Atoms of `structure` in the cube [-h, h)^3 after rotation, noise and random deletion.

    The lattice is generated in a margin of 3 sigma around the cube so that noise moves atoms
    in and out of it as in a real reconstruction. Returns (positions [n,3], species index [n],
    species names).
    """
    rot = orientation_matrix(p.pole, p.x_direction, p.azimuth_deg, p.tilt_deg)
    margin = 3 * max(p.sigma_xy_nm, p.sigma_z_nm)
    h = half_size_nm
    # a random origin shift so that the cube does not always start on the same lattice site
    shift = rng.random(3) * structure.a_nm
    pos, basis, _ = lattice_sites(structure.sites, structure.a_nm, rot, [-h - margin] * 3,
                                  [h + margin] * 3, origin_nm=shift)
    names = structure.species
    spec = draw_species(structure.sublattice[basis], structure.occupancy, names, rng)
    keep = apply_efficiency(len(pos), p.efficiency, rng)
    pos = apply_noise(pos[keep], p.sigma_xy_nm, p.sigma_z_nm, rng)
    spec = spec[keep]
    inside = np.all((pos >= -h) & (pos < h), axis=1)
    return pos[inside], spec[inside], names
