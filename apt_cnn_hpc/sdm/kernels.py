"""numba kernels: pair offsets of reference atoms to partner atoms, histogrammed per output slot.

A slot is one map: the whole region (one slot) or one voxel (per-voxel partial maps). References
are grouped by slot and slots are spread over threads, so no two threads write one histogram.
Partners are found with a cell list of cell size = neighbour radius.
"""
import numba as nb
import numpy as np


def build_cell_list(pos: np.ndarray, cell_nm: float):
    """Sort atoms into cubic cells: (order, cell_start, origin, dims). Cells sit on multiples of
    cell_nm and keep the atoms' order, so any superset of a region's atoms (another rank's halo)
    visits that region's atoms in the same order and sums over them bit for bit alike."""
    if len(pos) == 0:
        return (np.zeros(0, np.int64), np.zeros(2, np.int64), np.zeros(3), np.ones(3, np.int64))
    origin = np.floor(pos.min(axis=0) / cell_nm) * cell_nm
    dims = np.maximum(np.floor((pos.max(axis=0) - origin) / cell_nm).astype(np.int64) + 1, 1)
    cid = cell_ids(pos, origin, cell_nm, dims)
    order = np.argsort(cid, kind="stable")
    counts = np.bincount(cid, minlength=int(np.prod(dims)))
    start = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=start[1:])
    return order, start, origin, dims


@nb.njit(cache=True, fastmath=False)
def cell_ids(pos, origin, cell_nm, dims):
    """Flat cell index of each atom: 8 bytes per atom (numpy's floor((pos - origin) / cell) made
    three float64 temporaries of 24 bytes per atom and an int64 one)."""
    out = np.empty(len(pos), np.int64)
    for i in range(len(pos)):
        c0 = np.int64(np.floor((pos[i, 0] - origin[0]) / cell_nm))
        c1 = np.int64(np.floor((pos[i, 1] - origin[1]) / cell_nm))
        c2 = np.int64(np.floor((pos[i, 2] - origin[2]) / cell_nm))
        out[i] = (c0 * dims[1] + c1) * dims[2] + c2
    return out


@nb.njit(parallel=True, cache=True, fastmath=False)
def pair_histograms(ref_pos, ref_id, slot_start, part_pos, part_id, order, cell_start, origin,
                    dims, r_max, half_width, n_bins, z_half, z_bins, zx_out, z_out):
    """Add offsets (partner - reference) to zx_out[slot, dz_bin, dx_bin] and z_out[slot, dz_bin].

    ref_pos is sorted by slot; references of slot s are slot_start[s]:slot_start[s+1].
    A partner with the same id as the reference (the atom itself) is skipped.
    Returns the number of pairs within r_max (all slots).
    """
    n_slots = len(slot_start) - 1
    r2 = r_max * r_max
    bw = 2.0 * half_width / n_bins if n_bins > 0 else 1.0
    zbw = 2.0 * z_half / z_bins if z_bins > 0 else 1.0
    pairs = np.zeros(n_slots, np.int64)
    for s in nb.prange(n_slots):
        n_pairs = 0
        for i in range(slot_start[s], slot_start[s + 1]):
            xi = ref_pos[i, 0]
            yi = ref_pos[i, 1]
            zi = ref_pos[i, 2]
            cx = int(np.floor((xi - origin[0]) / r_max))
            cy = int(np.floor((yi - origin[1]) / r_max))
            cz = int(np.floor((zi - origin[2]) / r_max))
            for ax in range(max(cx - 1, 0), min(cx + 2, dims[0])):
                for ay in range(max(cy - 1, 0), min(cy + 2, dims[1])):
                    for az in range(max(cz - 1, 0), min(cz + 2, dims[2])):
                        c = (ax * dims[1] + ay) * dims[2] + az
                        for k in range(cell_start[c], cell_start[c + 1]):
                            j = order[k]
                            if part_id[j] == ref_id[i]:
                                continue
                            dx = part_pos[j, 0] - xi
                            dy = part_pos[j, 1] - yi
                            dz = part_pos[j, 2] - zi
                            if dx * dx + dy * dy + dz * dz >= r2:
                                continue
                            n_pairs += 1
                            if z_bins > 0:
                                bz = int(np.floor((dz + z_half) / zbw))
                                if 0 <= bz < z_bins:
                                    z_out[s, bz] += 1
                            if n_bins > 0:
                                bi = int(np.floor((dz + half_width) / bw))
                                bj = int(np.floor((dx + half_width) / bw))
                                if 0 <= bi < n_bins and 0 <= bj < n_bins:
                                    zx_out[s, bi, bj] += 1
        pairs[s] = n_pairs
    return pairs.sum()
