"""Matrix and precipitate compositions with counting errors. Counted in atoms (a molecular ion
contributes each of its atoms, as the precipitate tables do), over ranged ions only: unranged ions
carry no element, and undetermined ions (id -1) belong to neither phase."""
import numpy as np


def at_pct(atom_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(at.%, counting error in at.%, atoms counted) along the last axis of atom counts per
    element: p = n_el / n and the binomial error sqrt(p (1 - p) / n); NaN where n = 0."""
    atom_counts = np.asarray(atom_counts, np.float64)
    n = atom_counts.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = atom_counts / n
        err = np.sqrt(p * (1 - p) / n)
    return 100.0 * p, 100.0 * err, n[..., 0]


def atoms_of(species: np.ndarray, mask: np.ndarray, atoms_per_species: np.ndarray) -> np.ndarray:
    """Atoms per element of the ranged ions in `mask`."""
    sel = species[mask & (species >= 0)].astype(np.int64)
    return np.bincount(sel, minlength=len(atoms_per_species)).astype(np.float64) @ atoms_per_species


def phase_compositions(species: np.ndarray, ids: np.ndarray, atoms_per_species: np.ndarray) -> dict:
    """Composition of the matrix (id 0) and of all precipitates together (id >= 1)."""
    out = {}
    for phase, mask in (("matrix", ids == 0), ("precipitate", ids > 0)):
        pct, err, n = at_pct(atoms_of(species, mask, atoms_per_species))
        out[f"{phase}_at_pct"], out[f"{phase}_at_pct_error"], out[f"{phase}_atom_count"] = pct, err, int(n)
    return out
