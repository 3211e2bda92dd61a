"""A writer's share of the scan file, made from the blocks' partial results (scan/shares.py says
which share is whose): each voxel box receives the cube probabilities and evaluated flags of the
m - 1 cube layers above it from its neighbours and sums the cubes covering each voxel; evaluated
cubes go to the writer of their cube-table rows; per-ion values to the writer of their records."""
import numpy as np

from ..contracts.scan_file import ScanShare
from ..parallel.mpi import alltoallv_rows
from ..sdm.voxel import compact_voxels, window_sums
from .shares import WriteShares, by_destination, to_boxes, to_records


class ScanParts:
    """This rank's share of every dataset of the scan file, for all ensemble members at once.

    P: [K, block] cube probabilities per member, E: [block] 1 where evaluated, block_ref: reference
    ions per cube origin, all over the block's cube origins; visibility: the plane visibility of
    this rank's voxel box (scan/planes.py); own_xyz: the positions of the ions of the block's
    voxels; per_ion: (record indices, probabilities) of those ions, or None; m: voxels per cube edge."""

    def __init__(self, comm, shares: WriteShares, grid, m: int, block, P, E, block_ref, visibility, own_xyz,
                 per_ion):
        rank, k = comm.Get_rank(), len(P)
        at = np.asarray(block.lo) + m - 1        # cube-grid index = origin + m - 1
        cube_shape = tuple(int(v) + m - 1 for v in grid.shape)
        # voxel (i) is covered by cube indices i .. i + m - 1: a box takes m - 1 more above it
        halo = shares.grown(0, m - 1, cube_shape)
        Pb = to_boxes(comm, P, at, halo)
        Eb = to_boxes(comm, E.astype(np.uint8), at, halo).astype(np.int32)
        self.voxel_lo = shares.voxel_boxes[rank][0]
        box = shares.box_shape(rank)
        self.member_sums = np.zeros((k,) + box) if 0 in box else window_sums(Pb, m)
        self.window = np.zeros(box, np.int32) if 0 in box else window_sums(Eb, m)
        # ions per voxel of the block's own voxels, to the box that writes them
        vlo, vhi = block.voxels(grid.shape)
        n = np.maximum(vhi - vlo, 0)
        vox = compact_voxels(grid, own_xyz) - vlo
        counts = np.bincount(np.ravel_multi_index(tuple(vox.T), n), minlength=int(np.prod(n))).reshape(n)
        self.ion_count = to_boxes(comm, counts.astype(np.uint32), vlo, shares.voxel_boxes)
        self.visibility = visibility
        # the cube table: every evaluated cube of the block, to the writer of its x-row, in grid order
        idx = np.argwhere(E > 0) + at
        rows = np.column_stack([np.ravel_multi_index(tuple(idx.T), cube_shape), P[(slice(None), *(idx - at).T)].T,
                                np.rint(block_ref[tuple((idx - at).T)])]).astype(np.float64)
        got = alltoallv_rows(comm, [rows[p] for p in by_destination(idx[:, 0], [a for a, _ in shares.cube_rows])],
                             np.float64, k + 2)
        got = got[np.argsort(got[:, 0], kind="stable")]
        origins = np.stack(np.unravel_index(got[:, 0].astype(np.int64), cube_shape), axis=1) - (m - 1)
        self.origin_nm = (np.asarray(grid.origin_nm) + origins * grid.voxel_nm).astype(np.float32)
        self.probs, self.n_reference = got[:, 1:1 + k].T, got[:, -1].astype(np.uint32)
        counts = comm.allgather(len(got))
        self.cube_row, self.n_cubes = sum(counts[:rank]), sum(counts)
        self.skipped = int(comm.allreduce(int(np.count_nonzero((block_ref > 0) & (E == 0)))))
        self.ions, self.record, self.n_ions = None, shares.records[rank][0], shares.records[-1][1]
        if per_ion is not None:
            self.ions = to_records(comm, per_ion[0], per_ion[1], shares.records)

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
        return ScanShare(voxels, self.voxel_lo, cubes, self.cube_row, self.n_cubes, self.ions, self.record,
                         self.n_ions)
