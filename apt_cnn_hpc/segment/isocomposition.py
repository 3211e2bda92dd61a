"""The classical baseline: voxels whose delocalised composition of one element exceeds a threshold
(an isocomposition surface, as the paper's Figure 6d at 8 at.% Li)."""
import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..sdm import VoxelGrid


def element_counts(grid: VoxelGrid, xyz: np.ndarray, species: np.ndarray, atoms_per_species: np.ndarray,
                   column: int) -> tuple[np.ndarray, np.ndarray]:
    """Atoms of one element and atoms of all elements per voxel (molecular ions decomposed)."""
    vox = grid.index(np.asarray(xyz, np.float64))
    ok = np.all((vox >= 0) & (vox < np.asarray(grid.shape)), axis=1) & (species >= 0)
    flat = np.ravel_multi_index(tuple(vox[ok].T), grid.shape)
    sp = species[ok].astype(np.int64)
    size = int(np.prod(grid.shape))
    el = np.bincount(flat, weights=atoms_per_species[sp, column], minlength=size).reshape(grid.shape)
    total = np.bincount(flat, weights=atoms_per_species[sp].sum(axis=1), minlength=size).reshape(grid.shape)
    return el, total


def iso_mask(grid: VoxelGrid, xyz, species, elements: list, atoms_per_species, element: str,
             at_pct: float, delocalization_nm: float) -> tuple[np.ndarray, np.ndarray]:
    """(mask, composition at.%) with counts spread by a Gaussian of sd `delocalization_nm`."""
    if element not in elements:
        raise InputError(None, f"isocomposition element '{element}' is not in the range file "
                               f"(elements: {', '.join(elements)})")
    el, total = element_counts(grid, xyz, species, atoms_per_species, elements.index(element))
    if delocalization_nm > 0:
        sd = delocalization_nm / grid.voxel_nm
        el = ndimage.gaussian_filter(el, sd, mode="constant")
        total = ndimage.gaussian_filter(total, sd, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        comp = np.where(total > 1e-9, 100.0 * el / total, np.nan)
    return np.nan_to_num(comp, nan=-1.0) > at_pct, comp
