"""Domain decomposition of the scan: z-slabs of cube origins balanced by ion count, each rank
reading its own record range and receiving its slab plus halo with one Alltoallv.

A rank that owns cube z-origins [k0, k1) needs reference atoms in voxel layers k0 .. k1+m-2 and
partners up to the neighbour radius beyond them: the halo is (cube - stride) + radius.
"""
import logging
import time
from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

from ..parallel.mpi import allreduce_array, collective
from ..io import Ions, ion_record_range, read_ions
from ..io.ions import FORMATS
from ..io.posfile import count_records
from ..errors import InputError
from ..sdm import VoxelGrid, cube_counts

log = logging.getLogger(__name__)


def read_own_records(comm, path, drop_invalid: bool) -> Ions:
    """POS/ePOS: every rank memory-maps its own contiguous record range (ranks in file order).
    Other formats: rank 0 reads the file and the exchange distributes it."""
    rank, size = comm.Get_rank(), comm.Get_size()
    ext = str(path).lower().rsplit(".", 1)[-1]
    empty = Ions(np.empty((0, 3), np.float32), np.empty(0, np.float32))
    if f".{ext}" in (".pos", ".epos"):
        n = count_records(path)
        lo, hi = n * rank // size, n * (rank + 1) // size
        return ion_record_range(path, lo, hi, drop_invalid) if hi > lo else empty
    if f".{ext}" not in FORMATS:
        read_ions(path)  # raises the unknown-extension error
    return read_ions(path, drop_invalid) if rank == 0 else empty


def global_grid(comm, ions: Ions, voxel_nm: float) -> VoxelGrid:
    """The voxel grid of the whole data set (anchored at multiples of voxel_nm)."""
    big = np.finfo(np.float64).max
    lo = ions.xyz.min(axis=0).astype(np.float64) if len(ions) else np.full(3, big)
    hi = ions.xyz.max(axis=0).astype(np.float64) if len(ions) else np.full(3, -big)
    lo, hi = allreduce_array(comm, lo, MPI.MIN), allreduce_array(comm, hi, MPI.MAX)
    return VoxelGrid.covering(np.vstack([lo, hi]), voxel_nm)


@dataclass
class Slab:
    rank: int
    k0: int          # first cube z-origin (voxel index, may be negative)
    k1: int          # one past the last
    z_lo: float      # ions needed: z in [z_lo, z_hi)
    z_hi: float
    weight: float    # ions in its reference layers


def balance(comm, vox: np.ndarray, grid: VoxelGrid, m: int, radius: float) -> list:
    """Contiguous ranges of cube z-origins with about equal ion counts in their reference layers
    (`vox`: voxel indices of the ions this rank read)."""
    size = comm.Get_size()
    nz = grid.shape[2]
    kz = np.clip(vox[:, 2], 0, nz - 1)
    layer = allreduce_array(comm, np.bincount(kz, minlength=nz).astype(np.float64))
    origins = np.arange(-(m - 1), nz)
    c = np.concatenate([[0.0], np.cumsum(layer)])
    # weight of a cube layer = ions in the m voxel layers it covers
    w = c[np.clip(origins + m, 0, nz)] - c[np.clip(origins, 0, nz)]
    cw = np.cumsum(w)
    cuts = [0] + [int(np.searchsorted(cw, cw[-1] * r / size)) for r in range(1, size)] + [len(origins)]
    cuts = np.maximum.accumulate(cuts)
    slabs = []
    z0, v = grid.origin_nm[2], grid.voxel_nm
    for r in range(size):
        a, b = cuts[r], cuts[r + 1]
        k0, k1 = int(origins[a]) if a < len(origins) else nz, int(origins[b]) if b < len(origins) else nz
        slabs.append(Slab(r, k0, k1, z0 + k0 * v - radius, z0 + (k1 + m - 1) * v + radius,
                          float(w[a:b].sum())))
    return slabs


def _alltoallv(comm, blocks: list, mpi_type, dtype, width: int) -> np.ndarray:
    """Alltoallv of one block of `width`-wide rows per destination rank; the rows received."""
    send = np.concatenate(blocks).reshape(-1) if blocks else np.zeros(0, dtype)
    send_counts = np.array([b.size for b in blocks], np.int64)
    recv_counts = np.empty(comm.Get_size(), np.int64)
    comm.Alltoall(send_counts, recv_counts)
    sdispl = np.concatenate([[0], np.cumsum(send_counts)[:-1]])
    rdispl = np.concatenate([[0], np.cumsum(recv_counts)[:-1]])
    recv = np.empty(int(recv_counts.sum()), dtype)
    comm.Alltoallv([np.ascontiguousarray(send, dtype), (send_counts, sdispl), mpi_type],
                   [recv, (recv_counts, rdispl), mpi_type])
    return recv.reshape(-1, width)


def exchange(comm, ions: Ions, first: int, slabs: list) -> tuple[Ions, np.ndarray]:
    """Alltoallv: each rank sends every ion to every slab (with halo) that contains it, with its
    record index; a rank's ions come back in record order, so anything computed from them is
    the same for any number of ranks."""
    z = ions.xyz[:, 2]
    parts = [np.flatnonzero((z >= s.z_lo) & (z < s.z_hi)) for s in slabs]
    rec = _alltoallv(comm, [np.column_stack([ions.xyz[p], ions.mq[p]]).astype(np.float32) for p in parts],
                     MPI.FLOAT, np.float32, 4)
    index = _alltoallv(comm, [(p + first).astype(np.int64) for p in parts], MPI.INT64_T, np.int64, 1)[:, 0]
    order = np.argsort(index, kind="stable")
    rec, index = rec[order], index[order]
    return Ions(np.ascontiguousarray(rec[:, :3]), np.ascontiguousarray(rec[:, 3])), index


def distribute(comm, path, drop_invalid: bool, settings, halo_nm: float = 0.0):
    """Read, decompose and exchange: (ions in the file, global grid, slabs, this rank's ions with
    halo and their record indices, ion count per voxel of the whole grid, seconds per phase). The
    halo reaches max(neighbour radius, halo_nm) beyond the reference layers."""
    t = [time.perf_counter()]
    own = collective(comm, read_own_records, comm, path, drop_invalid)
    counts = comm.allgather(len(own))
    n_total, first = sum(counts), sum(counts[:comm.Get_rank()])   # record index of this rank's first ion
    if n_total == 0:
        raise InputError(path, "no ions")
    t.append(time.perf_counter())
    grid = global_grid(comm, own, settings.voxel_nm)
    vox = grid.index(own.xyz.astype(np.float64))
    slabs = balance(comm, vox, grid, settings.cube_voxels, max(settings.neighbour_radius_nm, halo_nm))
    t.append(time.perf_counter())
    local, index = exchange(comm, own, first, slabs)
    t.append(time.perf_counter())
    # ion count per voxel from the ions each rank read (each ion exactly once)
    ion_count = allreduce_array(comm, cube_counts(grid, vox, 1, full=False))
    t.append(time.perf_counter())
    phases = dict(zip(("read_s", "decompose_s", "exchange_s", "ion_count_s"), np.diff(t).tolist()))
    return n_total, grid, slabs, local, index, ion_count, phases
