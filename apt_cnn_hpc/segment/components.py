"""Connected components of a voxel mask and the per-precipitate table (size, place, chemistry)."""
import numpy as np
from scipy import ndimage

from ..sdm import VoxelGrid
from .voxels import voxel_values


def label_components(mask: np.ndarray, connectivity: int, min_voxels: int) -> np.ndarray:
    """Component label per voxel (0 = none), numbered 1..n by decreasing size so that the
    labelling does not depend on how the grid was traversed."""
    structure = ndimage.generate_binary_structure(3, connectivity)
    lab, n = ndimage.label(mask, structure=structure)
    if n == 0:
        return lab.astype(np.int32)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    keep = np.flatnonzero(sizes >= min_voxels)
    order = keep[np.lexsort((keep, -sizes[keep]))]     # largest first, ties by first voxel
    remap = np.zeros(n + 1, np.int32)
    remap[order + 1] = np.arange(1, len(order) + 1, dtype=np.int32)
    return remap[lab]


def element_table(ion_names: list, compositions: list) -> tuple[list, np.ndarray]:
    """Elements of the range file and atoms of each element per ion species [n_species, n_el];
    species with custom names (no elements) count as one atom of their own name."""
    elements: list = []
    for name, comp in zip(ion_names, compositions):
        for el in (comp or {name: 1}):
            if el not in elements:
                elements.append(el)
    atoms = np.zeros((len(ion_names), len(elements)))
    for k, (name, comp) in enumerate(zip(ion_names, compositions)):
        for el, n in (comp or {name: 1}).items():
            atoms[k, elements.index(el)] = n
    return elements, atoms


def precipitate_table(labels: np.ndarray, grid: VoxelGrid, xyz: np.ndarray, species: np.ndarray,
                      ion_names: list, atoms_per_species: np.ndarray, covered: np.ndarray) -> dict:
    """Per component: voxels, volume, equivalent-sphere radius, ion centroid, ions per species,
    composition (at.% per element) and whether it touches the edge of the data (a voxel next to
    the grid's faces or to voxels no cube covered), where its size is a lower bound."""
    n = int(labels.max())
    nsp = len(ion_names)
    comp_of_ion = voxel_values(xyz, grid, labels.astype(np.int64))
    inside = comp_of_ion > 0
    c = comp_of_ion[inside] - 1
    n_vox = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    volume = n_vox * grid.voxel_nm ** 3
    n_ions = np.bincount(c, minlength=n).astype(np.int64)
    centroid = np.full((n, 3), np.nan)
    for a in range(3):
        centroid[:, a] = np.bincount(c, weights=xyz[inside, a], minlength=n) / np.maximum(n_ions, 1)
    ranged = species[inside] >= 0
    per_species = np.zeros((n, nsp), np.int64)
    np.add.at(per_species, (c[ranged], species[inside][ranged].astype(np.int64)), 1)
    atoms = per_species @ atoms_per_species
    with np.errstate(invalid="ignore", divide="ignore"):
        composition = 100.0 * atoms / atoms.sum(axis=1, keepdims=True)
    outside = np.pad(~covered, 1, constant_values=True)
    near_outside = ndimage.binary_dilation(outside, ndimage.generate_binary_structure(3, 3))[1:-1, 1:-1, 1:-1]
    edge = np.zeros(n, bool)
    touching = labels[near_outside & (labels > 0)]
    edge[np.unique(touching) - 1] = True
    return {"n_voxels": n_vox.astype(np.int64), "volume_nm3": volume,
            "radius_nm": (3 * volume / (4 * np.pi)) ** (1 / 3), "centroid_nm": centroid,
            "ion_count": n_ions, "ion_count_per_species": per_species,
            "composition_at_pct": composition, "touches_edge": edge}
