"""What the instrument does to a crystal: finite resolution and limited detection efficiency."""
import numpy as np


def apply_noise(pos: np.ndarray, sigma_xy: float, sigma_z: float, rng) -> np.ndarray:
    """Gaussian displacement, wider laterally (x, y) than in depth (z), as in a reconstruction."""
    noise = rng.standard_normal(pos.shape)
    noise[:, :2] *= sigma_xy
    noise[:, 2] *= sigma_z
    return pos + noise


def apply_efficiency(n: int, efficiency: float, rng) -> np.ndarray:
    """Boolean mask of detected atoms (random deletion with probability 1 - efficiency)."""
    return rng.random(n) < efficiency


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
