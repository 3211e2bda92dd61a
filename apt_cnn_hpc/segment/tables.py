"""The precipitate table of any method, from its per-ion result: the same definitions of size,
place and chemistry for every method, so their tables compare."""
import numpy as np
from scipy import ndimage


def local_density(data) -> np.ndarray:
    """Ions per nm^3 around each voxel: ion counts averaged over the occupied voxels of a 3 x 3 x 3
    neighbourhood (a precipitate's volume is the sum over its ions of 1 / density)."""
    counts = data.voxels.ion_count.astype(np.float64)
    occupied = (counts > 0).astype(np.float64)
    total = ndimage.uniform_filter(counts, 3, mode="constant")
    n = ndimage.uniform_filter(occupied, 3, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1e-12), 0.0) / data.grid.voxel_nm ** 3


def near_edge(data) -> np.ndarray:
    """Voxels next to the grid's faces or to voxels no cube covered: a precipitate there may be
    cut by the edge of the data, its size a lower bound."""
    outside = np.pad(~data.voxels.covered, 1, constant_values=True)
    return ndimage.binary_dilation(outside, ndimage.generate_binary_structure(3, 3))[1:-1, 1:-1, 1:-1]


def precipitate_table(ids: np.ndarray, data, atoms_per_species: np.ndarray,
                      voxel_label: np.ndarray | None = None) -> dict:
    """Per precipitate k (ids == k): ions (all, and per ranged species), centroid, volume from
    the local ion density, equivalent-sphere radius, composition in at.% per element with its
    counting (binomial) error, and whether it touches the edge of the data."""
    n = int(ids.max(initial=0))
    inside = ids > 0
    c = ids[inside] - 1
    v = tuple(data.ion_voxel[inside].T)
    n_ions = np.bincount(c, minlength=n).astype(np.int64)
    centroid = np.full((n, 3), np.nan)
    for a in range(3):
        centroid[:, a] = np.bincount(c, weights=data.xyz[inside, a], minlength=n) / np.maximum(n_ions, 1)
    rho = local_density(data)[v]
    volume = np.bincount(c, weights=1.0 / np.maximum(rho, 1e-9), minlength=n)
    sp = data.species[inside]
    ranged = sp >= 0
    per_species = np.zeros((n, len(data.ranges.ion_names)), np.int64)
    np.add.at(per_species, (c[ranged], sp[ranged].astype(np.int64)), 1)
    atoms = per_species @ atoms_per_species
    total = atoms.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = atoms / total
        composition = 100.0 * frac
        sd = 100.0 * np.sqrt(frac * (1 - frac) / total)
    edge = np.zeros(n, bool)
    edge[np.unique(c[near_edge(data)[v]])] = True
    table = {"radius_nm": (3 * volume / (4 * np.pi)) ** (1 / 3), "volume_nm3": volume,
             "centroid_nm": centroid, "ion_count": n_ions, "ion_count_per_species": per_species,
             "composition_at_pct": composition, "composition_sd_at_pct": sd, "touches_edge": edge}
    if voxel_label is not None:
        table["n_voxels"] = np.bincount(voxel_label.ravel(), minlength=n + 1)[1:n + 1].astype(np.int64)
    return table
