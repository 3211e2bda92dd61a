"""A writer's share of the scan file, made from the blocks' partial results (scan/rows.py says
which share is whose): cube probabilities and evaluated flags move to the rows that need them
(with the m - 1 cube rows above a share), so every voxel's window sum, the cube table and the ion
counts are computed by the rank that writes them."""
import numpy as np

from ..contracts.scan_file import ScanShare
from ..sdm.voxel import window_sums
from .rows import WriteRows, to_records, to_rows


class ScanParts:
    """This rank's rows of every dataset of the scan file, for all ensemble members at once.

    P: [K, block] cube probabilities per member, E: [block] 1 where evaluated, block_ref: reference
    ions per cube origin, all over the block's cube origins; visibility: the plane visibility of
    this rank's voxel rows (scan/planes.py); own_xyz: the positions of the ions of the block's voxels;
    per_ion: (record indices, probabilities) of those ions, or None."""

    def __init__(self, comm, rows: WriteRows, grid, block, P, E, block_ref, visibility, own_xyz, per_ion):
        rank, size, m = comm.Get_rank(), comm.Get_size(), rows.m
        cube_shape = tuple(n + m - 1 for n in grid.shape)
        at = np.asarray(block.lo) + m - 1        # cube-grid index = origin + m - 1
        halo_rows = [rows.cube_halo_rows(r) for r in range(size)]
        P, E, N = (to_rows(comm, x, at, cube_shape, halo_rows)   # flags and counts in as few bytes as exact
                   for x in (P, E.astype(np.uint8), np.rint(block_ref).astype(np.uint32)))
        a, b = rows.voxel_rows[rank]
        self.voxel_row = a
        if b > a:
            self.member_sums, self.window = window_sums(P, m), window_sums(E.astype(np.int32), m)
        else:
            self.member_sums = np.zeros((len(P), 0) + tuple(grid.shape[1:]))
            self.window = np.zeros((0,) + tuple(grid.shape[1:]), np.int32)
        # the cube table: evaluated cubes of this share's cube rows, in grid order
        c0, c1 = rows.cube_rows(rank, grid.shape[0])
        local = slice(c0 - a, c1 - a)
        evaluated = np.argwhere(E[local] > 0)
        self.skipped = int(comm.allreduce(int(np.count_nonzero((N[local] > 0) & (E[local] == 0)))))
        counts = comm.allgather(len(evaluated))
        self.cube_row, self.n_cubes = sum(counts[:rank]), sum(counts)
        sel = (evaluated + [c0 - a, 0, 0]).T
        starts = grid.cube_origins(m, full=True)
        origins = np.stack([starts[ax][evaluated[:, ax] + (c0 if ax == 0 else 0)] for ax in range(3)], axis=1)
        self.origin_nm = (np.asarray(grid.origin_nm) + origins * grid.voxel_nm).astype(np.float32)
        self.probs = P[(slice(None), *sel)]
        self.n_reference = N[tuple(sel)].astype(np.uint32)
        # ions per voxel of the block's own voxels, to the rows they belong to
        vlo, vhi = block.voxels(grid.shape)
        n = np.maximum(vhi - vlo, 0)
        vox = grid.index(own_xyz) - vlo
        counts = np.bincount(np.ravel_multi_index(tuple(vox.T), n), minlength=int(np.prod(n))).reshape(n)
        self.ion_count = to_rows(comm, counts.astype(np.uint32), vlo, grid.shape, rows.voxel_rows)
        self.visibility = visibility
        self.ions, self.record, self.n_ions = None, rows.records[rank][0], rows.records[-1][1]
        if per_ion is not None:
            self.ions = to_records(comm, per_ion[0], per_ion[1], rows.records)

    def of_members(self, k: slice) -> ScanShare:
        """The share of the file holding the mean of members k (and their spread when k > 1)."""
        sums, probs = self.member_sums[k], self.probs[k]
        voxels = {"probability_sum": sums.mean(axis=0).astype(np.float32)}
        cubes = {"origin_nm": self.origin_nm, "probability": probs.mean(axis=0).astype(np.float32),
                 "n_reference": self.n_reference}
        if len(sums) > 1:   # an ensemble: the spread of the members' voxel sums (sample sd)
            voxels["probability_sum_sd"] = sums.std(axis=0, ddof=1).astype(np.float32)
            cubes["probability_members"] = probs.T.astype(np.float32)
        voxels.update(window_count=self.window.astype(np.uint8), ion_count=self.ion_count,
                      plane_visibility=self.visibility)
        return ScanShare(voxels, self.voxel_row, cubes, self.cube_row, self.n_cubes, self.ions, self.record,
                         self.n_ions)
