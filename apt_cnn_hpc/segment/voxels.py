"""Looking up voxel values for ions: the bridge from a voxel map to a per-ion result."""
import numpy as np

from ..sdm import VoxelGrid


def voxel_values(xyz, grid: VoxelGrid, volume: np.ndarray) -> np.ndarray:
    """The value of each ion's voxel (0 outside the grid)."""
    v = grid.index(np.asarray(xyz, np.float64))
    ok = np.all((v >= 0) & (v < np.asarray(grid.shape)), axis=1)
    out = np.zeros(len(v), volume.dtype)
    out[ok] = volume[tuple(v[ok].T)]
    return out


def ion_labels(xyz, grid: VoxelGrid, voxel_mask: np.ndarray) -> np.ndarray:
    """The label of each ion's voxel (False outside the grid)."""
    return voxel_values(xyz, grid, np.asarray(voxel_mask, bool))
