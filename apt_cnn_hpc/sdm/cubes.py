"""Cube maps of a whole (small) reconstruction in one process: the scan's SDM code path, used by
held-out evaluation and extraction. The MPI scan streams the same functions block by block."""
from dataclasses import dataclass

import numpy as np

from .maps import PartnerIndex, species_mask
from .normalise import to_uint8
from .settings import SDMSettings
from .voxel import VoxelGrid, cube_counts, cube_maps_by_layer


@dataclass
class CubeMaps:
    maps: np.ndarray          # uint8 [n, bins, bins]
    origin_nm: np.ndarray     # [n, 3] lower corner of each cube
    n_reference: np.ndarray   # [n]
    weight_sum: np.ndarray    # [n] per-cube sum of the optional per-ion weight (e.g. truth)


def all_cube_maps(xyz, labels, names, settings: SDMSettings, min_reference: int = 1,
                  weight=None, full: bool = False) -> CubeMaps:
    """Maps of every cube (cube_nm, stride voxel_nm) with at least `min_reference` references."""
    ref_sp, part_sp = settings.pair
    is_ref = species_mask(labels, names, ref_sp)
    is_part = species_mask(labels, names, part_sp)
    ids = np.arange(len(xyz))
    pos = np.asarray(xyz, np.float64)
    index = PartnerIndex(pos[is_part], ids[is_part], settings)
    grid = VoxelGrid.covering(pos, settings.voxel_nm)
    m = settings.cube_voxels
    vox = grid.index(pos[is_ref])
    n_ref = cube_counts(grid, vox, m, full)
    wsum = cube_counts(grid, vox, m, full, weight[is_ref]) if weight is not None else np.zeros_like(n_ref)
    ox, oy, oz = grid.cube_origins(m, full)
    maps, origins, nr, ws = [], [], [], []
    for kz, layer in cube_maps_by_layer(index, pos[is_ref], ids[is_ref], grid, m, full):
        iz = int(np.searchsorted(oz, kz))
        sel = np.argwhere(n_ref[:, :, iz] >= min_reference)
        if len(sel) == 0:
            continue
        maps.append(to_uint8(layer[sel[:, 0], sel[:, 1]]))
        o = np.stack([ox[sel[:, 0]], oy[sel[:, 1]], np.full(len(sel), kz)], axis=1)
        origins.append(np.asarray(grid.origin_nm) + o * settings.voxel_nm)
        nr.append(n_ref[sel[:, 0], sel[:, 1], iz])
        ws.append(wsum[sel[:, 0], sel[:, 1], iz])
    b = settings.map_bins
    if not maps:
        return CubeMaps(np.zeros((0, b, b), np.uint8), np.zeros((0, 3)), np.zeros(0), np.zeros(0))
    return CubeMaps(np.concatenate(maps), np.concatenate(origins), np.concatenate(nr), np.concatenate(ws))
