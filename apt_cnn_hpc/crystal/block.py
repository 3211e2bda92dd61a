"""A small simulated reconstruction of one crystal: what one library map is made from."""
from dataclasses import dataclass, field

import numpy as np

from .detector import Instrument, draw_species
from .lattice import lattice_sites
from .orientation import axis_rotation, orientation_matrix
from .structure import Structure


@dataclass
class BlockParams:
    instrument: Instrument = field(default_factory=Instrument)
    azimuth_deg: float = 0.0
    rotation_deg: float = 0.0      # the paper's in-plane map rotation (about y), done on the atoms
    pole: tuple = (0, 1, 1)
    x_direction: tuple = (1, 0, 0)

    def rotation(self) -> np.ndarray:
        inst = self.instrument
        a = np.radians(inst.pole_tilt_azimuth_deg)
        tilt = axis_rotation((-np.sin(a), np.cos(a), 0.0), inst.pole_tilt_deg)
        return tilt @ orientation_matrix(self.pole, self.x_direction, self.azimuth_deg, self.rotation_deg)


@dataclass
class Inclusion:
    """A coherent ordered sphere inside the block (a precipitate cut by the cube)."""
    structure: Structure
    centre_nm: np.ndarray
    radius_nm: float
    variant: int = 0


def simulate_block(structure: Structure, p: BlockParams, half_size_nm: float, rng,
                   inclusions: tuple = ()):
    """Atoms of `structure` in the cube [-h, h)^3 after rotation and the instrument's artefacts.

    The lattice is generated in a margin around the cube so that noise moves atoms in and out of
    it as in a real reconstruction. Sites inside an inclusion (judged on their true positions)
    take its species; the instrument's interface magnification acts about each centre.
    Background ions (the instrument's fraction of the detected atoms) sit at random positions
    with species drawn from the detected ones: background that falls into the ranges (the worst
    case for a map). Curved planes are left out: over a block their slope is a small tilt.
    Returns (positions [n,3], species index [n], species names, in_inclusion [n] bool).
    """
    inst = p.instrument
    margin = 3 * max(inst.sigma_xy_nm, inst.sigma_z_nm) \
        + abs(inst.interface_magnification - 1) * max((inc.radius_nm for inc in inclusions), default=0.0)
    h = half_size_nm
    lo, hi = np.full(3, -h - margin), np.full(3, h + margin)
    lo[2], hi[2] = min(lo[2], -h / inst.z_scale - margin), max(hi[2], h / inst.z_scale + margin)
    # a random origin shift so that the cube does not always start on the same lattice site
    shift = rng.random(3) * structure.a_nm
    pos, basis, frac = lattice_sites(structure.sites, structure.a_nm, p.rotation(), lo, hi, origin_nm=shift)
    names = list(structure.species)
    for inc in inclusions:
        names += [s for s in inc.structure.species if s not in names]
    spec = draw_species(structure.sublattice[basis], structure.occupancy, names, rng)
    inside = np.zeros(len(pos), bool)
    for inc in inclusions:
        here = np.sum((pos - inc.centre_nm) ** 2, axis=1) < inc.radius_nm ** 2
        sub = inc.structure.site_sublattice(frac[here], inc.variant)
        spec[here] = draw_species(sub, inc.structure.occupancy, names, rng)
        inside |= here
    centres = np.array([inc.centre_nm for inc in inclusions]).reshape(-1, 3)
    keep, pos = inst.detect(pos, rng, centres, np.array([inc.radius_nm for inc in inclusions]))
    ok = np.all((pos >= -h) & (pos < h), axis=1)
    pos, spec, inside = pos[ok], spec[keep][ok], inside[keep][ok]
    n_bg = rng.poisson(inst.background_fraction * len(pos)) if inst.background_fraction > 0 else 0
    if n_bg:
        pos = np.concatenate([pos, rng.uniform(-h, h, (n_bg, 3))])
        spec = np.concatenate([spec, spec[rng.integers(0, len(spec), n_bg)]])
        inside = np.concatenate([inside, np.zeros(n_bg, bool)])
    return pos, spec, names, inside
