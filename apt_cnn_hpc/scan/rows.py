"""Who writes which part of the scan file, and moving partial results to their writer.

The scan computes in boxes (scan/decompose.py) but the file is written in x-rows of the voxel grid
and ranges of records. The serial writer gives rank 0 everything; the mpio writer gives every rank
an equal share, which it writes collectively, so no rank holds a whole grid. Both go through the
same code: only the shares differ, and the two files differ only in the writer's provenance."""
from dataclasses import dataclass

import numpy as np

from ..parallel.mpi import alltoallv_rows


WRITERS = ("auto", "mpio", "serial")


def even(n: int, size: int) -> list:
    """[a, b) of n items cut into `size` contiguous shares as equal as can be."""
    return [(n * r // size, n * (r + 1) // size) for r in range(size)]


@dataclass
class WriteRows:
    """voxel_rows[r]: the voxel x-indices [a, b) rank r writes; records[r]: its record range."""
    voxel_rows: list
    records: list
    m: int          # voxels per cube edge: the cube grid has nx + m - 1 rows (index = origin + m - 1)

    @classmethod
    def make(cls, parallel: bool, size: int, nx: int, n_ions: int, m: int) -> "WriteRows":
        """Equal shares for every rank (parallel) or everything on rank 0 (serial)."""
        if parallel:
            return cls(even(nx, size), even(n_ions, size), m)
        return cls([(0, nx)] + [(nx, nx)] * (size - 1), [(0, n_ions)] + [(n_ions, n_ions)] * (size - 1), m)

    def cube_halo_rows(self, rank: int) -> tuple:
        """Cube-grid rows [a, b + m - 1) whose cubes cover voxel rows [a, b) (none for an empty share)."""
        a, b = self.voxel_rows[rank]
        return (a, b + self.m - 1) if b > a else (a, a)

    def cube_rows(self, rank: int, nx: int) -> tuple:
        """The cube-grid rows whose evaluated cubes this rank's share of the cube table holds: its
        voxel rows, the last share also the m - 1 rows past the grid; consecutive in rank order."""
        a, b = self.voxel_rows[rank]
        tail = self.m - 1
        return a + (tail if a == nx else 0), b + (tail if b == nx else 0)


def to_rows(comm, part: np.ndarray, lo, shape, rows: list) -> np.ndarray:
    """This rank's rows [a, b) (first grid axis) of a grid of `shape`, assembled from every rank's
    box `part` (its last three axes; leading axes ride along) that starts at grid index `lo`; the
    boxes are disjoint, and rows no box covers are 0. Each box sends only what a share needs."""
    lo = [int(v) for v in lo]
    n0 = part.shape[-3]
    sends = []
    for a, b in rows:
        s, e = max(a, lo[0]), min(b, lo[0] + n0)
        sends.append((s, lo[1], lo[2], np.ascontiguousarray(part[..., s - lo[0]:e - lo[0], :, :])) if e > s else None)
    a, b = rows[comm.Get_rank()]
    out = np.zeros(part.shape[:-3] + (b - a,) + tuple(shape[1:]), part.dtype)
    for got in comm.alltoall(sends):
        if got is not None:
            s, y0, z0, arr = got
            out[..., s - a:s - a + arr.shape[-3], y0:y0 + arr.shape[-2], z0:z0 + arr.shape[-1]] = arr
    return out


def to_records(comm, index: np.ndarray, values: np.ndarray, records: list) -> np.ndarray:
    """This rank's record range [a, b) of a per-record array, from (record index, value) pairs each
    held by one rank (NaN where no rank had a value)."""
    starts = np.array([a for a, _ in records])
    dest = np.searchsorted(starts, index, side="right") - 1
    order = np.argsort(dest, kind="stable")
    bounds = np.searchsorted(dest[order], np.arange(len(records) + 1))
    idx = alltoallv_rows(comm, [index[order[p:q]].astype(np.int64) for p, q in zip(bounds[:-1], bounds[1:])],
                         np.int64, 1)[:, 0]
    val = alltoallv_rows(comm, [values[order[p:q]].astype(np.float32) for p, q in zip(bounds[:-1], bounds[1:])],
                         np.float32, 1)[:, 0]
    a, b = records[comm.Get_rank()]
    out = np.full(b - a, np.nan, np.float32)
    out[idx - a] = val
    return out

