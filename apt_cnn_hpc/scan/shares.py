"""Who writes which part of the scan file, and moving partial results to their writer.

The mpio writer gives every rank the voxels of its own block (a box of the grid, written as a 3-D
hyperslab), an equal range of the cube table's x-rows and an equal range of records; the serial
writer gives rank 0 all of it. A box's window sums and plane visibility read a few voxels beyond
it, which come from the neighbouring blocks (communication with the blocks' surfaces); cube-table
rows and per-ion values go to their writer in file order. Both writers go through the same code:
only the shares differ, and the two files differ only in the writer's provenance."""
from dataclasses import dataclass

import numpy as np

from ..parallel.mpi import alltoallv_rows

WRITERS = ("auto", "mpio", "serial")


def even(n: int, size: int) -> list:
    """[a, b) of n items cut into `size` contiguous shares as equal as can be."""
    return [(n * r // size, n * (r + 1) // size) for r in range(size)]


@dataclass
class WriteShares:
    """voxel_boxes[r]: (lo, hi) voxel indices rank r writes; cube_rows[r]: the cube-grid x-rows
    [a, b) of its part of the cube table; records[r]: its record range."""
    voxel_boxes: list
    cube_rows: list
    records: list

    @classmethod
    def make(cls, parallel: bool, blocks: list, shape, n_ions: int, m: int) -> "WriteShares":
        """Each block's own voxels and equal row and record ranges (parallel), or all on rank 0."""
        size, shape = len(blocks), tuple(int(n) for n in shape)
        if parallel:
            return cls([tuple(tuple(int(v) for v in a) for a in b.voxels(shape)) for b in blocks],
                       even(shape[0] + m - 1, size), even(n_ions, size))
        nothing = ((0, 0, 0), (0, 0, 0))
        return cls([((0, 0, 0), shape)] + [nothing] * (size - 1),
                   [(0, shape[0] + m - 1)] + [(shape[0] + m - 1,) * 2] * (size - 1),
                   [(0, n_ions)] + [(n_ions, n_ions)] * (size - 1))

    def box_shape(self, rank: int) -> tuple:
        """The shape of rank's voxel box (a 0 in it when the rank writes no voxels)."""
        lo, hi = self.voxel_boxes[rank]
        return tuple(max(h - l, 0) for l, h in zip(lo, hi))

    def grown(self, below, above, shape) -> list:
        """Every rank's voxel box grown by `below` / `above` voxels per axis, clipped to `shape`
        (empty boxes stay empty): what its window sums or scores read."""
        out = []
        for lo, hi in self.voxel_boxes:
            lo, hi = np.asarray(lo), np.asarray(hi)
            if np.any(hi <= lo):
                out.append((tuple(lo), tuple(lo)))
            else:
                out.append((tuple(np.maximum(lo - below, 0)), tuple(np.minimum(hi + above, shape))))
        return out


def to_boxes(comm, part: np.ndarray, lo, targets: list) -> np.ndarray:
    """This rank's box targets[rank] = (lo, hi) of a grid, assembled from every rank's box `part`
    (its last three axes; leading axes ride along) that starts at grid index `lo`; the parts are
    disjoint, and what no part covers is 0. Each part sends every target only their overlap."""
    lo = np.asarray(lo, int)
    top = lo + np.asarray(part.shape[-3:])
    sends = []
    for t_lo, t_hi in targets:
        a, b = np.maximum(lo, t_lo), np.minimum(top, t_hi)
        cut = tuple(slice(int(x - o), int(y - o)) for x, y, o in zip(a, b, lo))
        sends.append((tuple(int(v) for v in a), np.ascontiguousarray(part[(..., *cut)])) if np.all(b > a) else None)
    t_lo, t_hi = (np.asarray(v, int) for v in targets[comm.Get_rank()])
    out = np.zeros(part.shape[:-3] + tuple(int(v) for v in np.maximum(t_hi - t_lo, 0)), part.dtype)
    for got in comm.alltoall(sends):
        if got is not None:
            start, arr = got
            at = tuple(slice(s - o, s - o + n) for s, o, n in zip(start, t_lo, arr.shape[-3:]))
            out[(..., *at)] = arr
    return out


def by_destination(keys: np.ndarray, starts) -> list:
    """Indices of `keys` per destination rank, rank r taking keys from starts[r] on (ascending)."""
    dest = np.searchsorted(np.asarray(starts), keys, side="right") - 1
    order = np.argsort(dest, kind="stable")
    bounds = np.searchsorted(dest[order], np.arange(len(starts) + 1))
    return [order[p:q] for p, q in zip(bounds[:-1], bounds[1:])]


def to_records(comm, index: np.ndarray, values: np.ndarray, records: list) -> np.ndarray:
    """This rank's record range [a, b) of a per-record array, from (record index, value) pairs each
    held by one rank (NaN where no rank had a value)."""
    parts = by_destination(index, [a for a, _ in records])
    idx = alltoallv_rows(comm, [index[p].astype(np.int64) for p in parts], np.int64, 1)[:, 0]
    val = alltoallv_rows(comm, [values[p].astype(np.float32) for p in parts], np.float32, 1)[:, 0]
    a, b = records[comm.Get_rank()]
    out = np.full(b - a, np.nan, np.float32)
    out[idx - a] = val
    return out
