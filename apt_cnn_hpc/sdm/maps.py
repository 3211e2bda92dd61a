"""zx-SDMs and z-SDMs of a species pair, for one region or for many slots (voxels, cubes)."""
import numpy as np

from ..io.ranges import species_index
from .kernels import build_cell_list, pair_histograms
from .settings import SDMSettings


class PartnerIndex:
    """Partner atoms (one species, from the whole data set) in a cell list, built once and
    queried for any set of references."""

    def __init__(self, pos: np.ndarray, ids: np.ndarray, settings: SDMSettings):
        self.settings = settings
        self.pos = np.ascontiguousarray(pos, dtype=np.float64)
        self.ids = np.ascontiguousarray(ids, dtype=np.int64)
        self.order, self.start, self.origin, self.dims = build_cell_list(
            self.pos, settings.neighbour_radius_nm)

    def histograms(self, ref_pos, ref_ids, ref_slot, n_slots: int, zx: bool = True,
                   z: bool = False, dtype=np.int32):
        """Per-slot histograms: zx [n_slots, bins, bins] and z [n_slots, z_bins] (or None).

        `ref_slot` gives the slot of each reference atom (a voxel, a cube, or 0 for a region).
        """
        s = self.settings
        ref_slot = np.asarray(ref_slot, dtype=np.int64)
        order = np.argsort(ref_slot, kind="stable")
        slot_start = np.zeros(n_slots + 1, np.int64)
        np.cumsum(np.bincount(ref_slot, minlength=n_slots), out=slot_start[1:])
        nb_ = s.map_bins if zx else 0
        nz = s.z_bins if z else 0
        zx_out = np.zeros((n_slots if zx else 1, max(nb_, 1), max(nb_, 1)), dtype=dtype)
        z_out = np.zeros((n_slots if z else 1, max(nz, 1)), dtype=dtype)
        if len(ref_slot):
            pair_histograms(np.ascontiguousarray(np.asarray(ref_pos, np.float64)[order]),
                            np.ascontiguousarray(np.asarray(ref_ids, np.int64)[order]),
                            slot_start, self.pos, self.ids, self.order, self.start, self.origin,
                            self.dims, s.neighbour_radius_nm, s.map_half_width_nm, nb_,
                            s.neighbour_radius_nm, nz, zx_out, z_out)
        return (zx_out if zx else None), (z_out if z else None)


def species_mask(labels: np.ndarray, names: list, species: str) -> np.ndarray:
    """Boolean mask of ions labelled `species` (by name in the range table's list)."""
    return labels == species_index(names, species)


def region_sdm(pos, labels, names, settings: SDMSettings, box_lo, box_hi):
    """zx-SDM [dz, dx] and z-SDM of the settings' pair for references inside the box
    [box_lo, box_hi) and partners from all of `pos`. Returns (zx, z, n_references)."""
    ref_sp, part_sp = settings.pair
    ids = np.arange(len(pos))
    is_ref = species_mask(labels, names, ref_sp)
    is_part = species_mask(labels, names, part_sp)
    inside = np.all((pos >= np.asarray(box_lo)) & (pos < np.asarray(box_hi)), axis=1)
    refs = np.flatnonzero(is_ref & inside)
    # partners only near the box: keeps the cell list small for a huge reconstruction
    r = settings.neighbour_radius_nm
    near = np.all((pos >= np.asarray(box_lo) - r) & (pos < np.asarray(box_hi) + r), axis=1)
    parts = np.flatnonzero(is_part & near)
    index = PartnerIndex(pos[parts], ids[parts], settings)
    zx, z = index.histograms(pos[refs], ids[refs], np.zeros(len(refs), np.int64), 1,
                             zx=True, z=True, dtype=np.int64)
    return zx[0], z[0], len(refs)
