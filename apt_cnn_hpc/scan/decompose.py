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
    """POS/ePOS: every rank memory-maps its own contiguous record range. Other formats: rank 0
    reads the file and the exchange distributes it."""
    rank, size = comm.Get_rank(), comm.Get_size()
    ext = str(path).lower().rsplit(".", 1)[-1]
    if f".{ext}" in (".pos", ".epos"):
        n = count_records(path)
        lo, hi = n * rank // size, n * (rank + 1) // size
        if hi > lo:
            return ion_record_range(path, lo, hi, drop_invalid)
        return Ions(np.empty((0, 3), np.float32), np.empty(0, np.float32))
    if f".{ext}" not in FORMATS:
        read_ions(path)  # raises the unknown-extension error
    if rank == 0:
        return read_ions(path, drop_invalid)
    return Ions(np.empty((0, 3), np.float32), np.empty(0, np.float32))


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


def exchange(comm, ions: Ions, slabs: list) -> Ions:
    """Alltoallv: each rank sends every ion to every slab (with halo) that contains it."""
    size = comm.Get_size()
    z = ions.xyz[:, 2]
    parts = [np.flatnonzero((z >= s.z_lo) & (z < s.z_hi)) for s in slabs]
    send_idx = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    rec = np.empty((len(send_idx), 4), np.float32)
    rec[:, :3] = ions.xyz[send_idx]
    rec[:, 3] = ions.mq[send_idx]
    send_counts = np.array([len(p) * 4 for p in parts], np.int64)
    recv_counts = np.empty(size, np.int64)
    comm.Alltoall(send_counts, recv_counts)
    sdispl = np.concatenate([[0], np.cumsum(send_counts)[:-1]])
    rdispl = np.concatenate([[0], np.cumsum(recv_counts)[:-1]])
    recv = np.empty(int(recv_counts.sum()), np.float32)
    comm.Alltoallv([rec.reshape(-1), (send_counts, sdispl), MPI.FLOAT],
                   [recv, (recv_counts, rdispl), MPI.FLOAT])
    recv = recv.reshape(-1, 4)
    return Ions(np.ascontiguousarray(recv[:, :3]), np.ascontiguousarray(recv[:, 3]))


def distribute(comm, path, drop_invalid: bool, settings):
    """Read, decompose and exchange: (ions in the file, global grid, slabs, this rank's ions with
    halo, ion count per voxel of the whole grid, seconds per phase)."""
    t = [time.perf_counter()]
    own = collective(comm, read_own_records, comm, path, drop_invalid)
    n_total = comm.allreduce(len(own))
    if n_total == 0:
        raise InputError(path, "no ions")
    t.append(time.perf_counter())
    grid = global_grid(comm, own, settings.voxel_nm)
    vox = grid.index(own.xyz.astype(np.float64))
    slabs = balance(comm, vox, grid, settings.cube_voxels, settings.neighbour_radius_nm)
    t.append(time.perf_counter())
    local = exchange(comm, own, slabs)
    t.append(time.perf_counter())
    # ion count per voxel from the ions each rank read (each ion exactly once)
    ion_count = allreduce_array(comm, cube_counts(grid, vox, 1, full=False))
    t.append(time.perf_counter())
    phases = dict(zip(("read_s", "decompose_s", "exchange_s", "ion_count_s"), np.diff(t).tolist()))
    return n_total, grid, slabs, local, ion_count, phases
