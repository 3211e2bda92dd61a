"""Ions where the lattice planes are not resolved are undetermined (id -1): there a method's "matrix"
only means it saw nothing, and a cube CNN's L1_2 calls mean nothing at all. A precipitate keeps its
ions in such voxels when they carry the L1_2 superlattice themselves (sdm/visibility.py): its order
was seen, so it is a finding, not a guess."""
import numpy as np

from ..sdm.lattice import PlaneField
from ..sdm.visibility import SUPERLATTICE_THRESHOLD, superlattice_power


def solute_ions(species: np.ndarray) -> np.ndarray:
    """Ranged ions of any species but the most common one (the matrix element's ion)."""
    ranged = species >= 0
    if not ranged.any():
        return np.zeros(len(species), bool)
    return ranged & (species != np.bincount(species[ranged]).argmax())


def mark_undetermined(ids: np.ndarray, resolved: np.ndarray, xyz: np.ndarray, species: np.ndarray,
                      field: dict) -> np.ndarray:
    """`ids` with every ion of an unresolved voxel set to -1, except the ions of a precipitate whose
    own unresolved ions show its superlattice (power >= SUPERLATTICE_THRESHOLD)."""
    out = np.where(resolved, ids, -1).astype(np.int32)
    hidden = np.flatnonzero(~resolved & (ids > 0))
    if not len(hidden):
        return out
    psi = PlaneField.from_dict(field).phase(xyz[hidden])
    solute, ranged = solute_ions(species)[hidden], species[hidden] >= 0   # matrix element: of all ions
    order = np.argsort(ids[hidden], kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(ids[hidden][order])) + 1)
    for g in groups:
        r = g[ranged[g]]
        if len(r) and superlattice_power(psi[r], solute[r]) >= SUPERLATTICE_THRESHOLD:
            out[hidden[g]] = ids[hidden[g]]
    return out
