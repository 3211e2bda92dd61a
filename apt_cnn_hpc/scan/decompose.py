"""Domain decomposition of the scan: boxes of cube origins (3-D blocks, or z-slabs) balanced on a
cost model, each rank reading its own record range and receiving its box plus halo with one
Alltoallv; a block is streamed in x-y tiles that fit the memory budget.

A rank whose cube origins are [lo, hi) needs reference atoms in voxels lo .. hi+m-2 and partners up
to the neighbour radius beyond them: the halo is (cube - stride) + radius on the upper side.
"""
import logging
import time
from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

from ..parallel.mpi import allreduce_array, alltoallv_packed, collective
from ..io import Ions, ion_record_range, read_ions
from ..io.ions import FORMATS
from ..io.posfile import count_records
from ..errors import InputError
from ..sdm import VoxelGrid
from ..sdm.voxel import box_sum_axis, compact_voxels

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


# the cost model (ms on one core; docs/performance.md "Scale-out"): 0.15 ms per cube origin (the
# 45 M-ion --full run's fit with the tiles' overlap), and from a 4.2 M-ion 2-rank scan 0.47 ms more
# per evaluated cube's histograms, 0.90 ms per map's inference and the per-ion passes (34 us per
# own ion, 3.7 us for the planes; ~0.88 of the ions are references, whose counts root holds)
MAP_COST = 0.15     # ms per cube origin of a tile's box sums, evaluated or not
EVAL_COST = 1.37    # ms more per evaluated cube: its histograms and its inference
ION_COST = 0.0042   # ms per reference ion of the voxels a rank owns: the planes' phasors
PER_ION_COST = 0.039   # ms more per reference ion with the per-ion pass (scan's per_ion)
AXES = {"blocks": (0, 1, 2), "slabs": (2,)}
CHUNK = 1 << 20     # ions a rank turns into voxel indices at once (their float temporaries: ~100 B each)
MAX_COST_CELLS = 1 << 24   # cells of the cost grid root cuts (128 MB per float64 grid; cells of 2
                           # origins keep 10^9 ions on 1,024 ranks within ~1.1 of balance, of 3 not)


@dataclass
class Block:
    """The cube origins [lo, hi) (voxel indices per axis, may be negative) one rank evaluates, the
    voxels it owns (their ions' per-ion results and voxel sums are its), and the box of ions it
    needs: position in [box_lo_nm, box_hi_nm)."""
    rank: int
    lo: tuple
    hi: tuple
    weight: float          # cost in ms (MAP_COST, EVAL_COST)
    box_lo_nm: tuple
    box_hi_nm: tuple

    def owns(self, vox: np.ndarray, shape) -> np.ndarray:
        """Which voxel indices [n, 3] are this block's (every voxel of the grid is one block's)."""
        lo, hi = self.voxels(shape)
        return np.all((vox >= lo) & (vox < hi), axis=1)

    def voxels(self, shape) -> tuple:
        """(first, one past the last) voxel index per axis of the voxels the block owns."""
        return np.clip(self.lo, 0, shape), np.clip(self.hi, 0, shape)

    def cube_counts(self, vox: np.ndarray, shape, m: int) -> np.ndarray:
        """Ions (voxel indices `vox`) per cube origin of the block, [hi - lo] (exact when the rank
        holds the block's ions with halo): what a rank needs without the whole grid's counts. A
        chunk of ions at a time: the int64 offsets of all of them at once are 24 bytes per ion."""
        lo, hi = np.asarray(self.lo), np.asarray(self.hi)
        wlo, whi = np.clip(lo, 0, shape), np.clip(hi + m - 1, 0, shape)
        n = np.maximum(whi - wlo, 0)
        out = np.zeros(int(np.prod(n)), np.int64)
        for i in range(0, len(vox), CHUNK):
            v = vox[i:i + CHUNK]
            v = v[np.all((v >= wlo) & (v < whi), axis=1)]
            out += np.bincount(np.ravel_multi_index(tuple((v - wlo).T), n), minlength=out.size)
        out = out.reshape(n).astype(np.float64)
        for axis in range(3):
            out = box_sum_axis(out, np.arange(lo[axis], hi[axis]) - wlo[axis], m, axis)
        return out

    def tiles(self, max_voxels: int, m: int) -> list:
        """The x-y ranges of cube origins ((i0, i1), (j0, j1)) the block is streamed in, as few as
        keep each tile's voxel window ((i1 - i0 + m - 1) x (j1 - j0 + m - 1)) within max_voxels."""
        ex, ey = self.hi[0] - self.lo[0], self.hi[1] - self.lo[1]
        if ex <= 0 or ey <= 0 or self.hi[2] <= self.lo[2]:
            return []
        best = None
        for nx in range(1, ex + 1):
            tx = -(-ex // nx)
            ty = max(max_voxels // (tx + m - 1) - (m - 1), 0)
            if ty >= 1:
                ny = -(-ey // min(ty, ey))
                if best is None or nx * ny < best[0] * best[1]:
                    best = (nx, ny)
        nx, ny = best or (ex, ey)     # below one cube's window: one cube origin per tile
        cut = lambda lo, n, k: [lo + n * i // k for i in range(k + 1)]  # noqa: E731
        xs, ys = cut(self.lo[0], ex, nx), cut(self.lo[1], ey, ny)
        return [((xs[a], xs[a + 1]), (ys[b], ys[b + 1])) for a in range(nx) for b in range(ny)]


def bisect(weight: np.ndarray, n_ranks: int, axes=(0, 1, 2)) -> list:
    """Recursive bisection of the cube-origin grid into n_ranks boxes [(lo, hi, weight)] (grid
    index space) of about equal weight: each cut goes across the longest of the allowed axes (ties
    to z, then y), at the weighted quantile that matches the ranks on either side."""
    def split(lo, hi, n):
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        if n == 1:
            return [(lo, hi, float(weight[box].sum()))]
        ext = [hi[a] - lo[a] for a in range(3)]
        axis = max(axes, key=lambda a: (ext[a], a))
        n1 = n // 2
        if ext[axis] < 2:     # nothing left to cut: the remaining ranks get nothing
            return split(lo, hi, 1) + [(hi, hi, 0.0)] * (n - 1)
        other = tuple(a for a in range(3) if a != axis)
        c = np.cumsum(weight[box].sum(axis=other))
        cut = int(np.clip(np.searchsorted(c, c[-1] * n1 / n) + 1, 1, ext[axis] - 1)) + lo[axis]
        mid_hi, mid_lo = list(hi), list(lo)
        mid_hi[axis] = mid_lo[axis] = cut
        return split(lo, tuple(mid_hi), n1) + split(tuple(mid_lo), hi, n - n1)
    return split((0, 0, 0), tuple(weight.shape), n_ranks)


def cost_cell(shape, m: int) -> int:
    """Cube origins per cost cell along each axis: 1 (each origin weighed exactly) unless the origin
    grid has more than MAX_COST_CELLS; then the smallest edge that brings it under (root holds a
    few float64 grids of cells, not of voxels: 10^9 ions need 2)."""
    n = float(np.prod([s + m - 1 for s in shape]))
    return max(1, int(np.ceil((n / MAX_COST_CELLS) ** (1 / 3) - 1e-9)))


def cube_weight(n_ref: np.ndarray, min_reference: int, m: int, ref_count=None, ion_ms: float = 0.0) -> np.ndarray:
    """The cost model per cube origin (n_ref: reference ions per cube origin of the whole grid) and,
    at ion_ms per reference ion, of the voxels it owns (ref_count: reference ions per voxel; voxel
    v is owned with cube origin v, and the m - 1 origins below the grid own none)."""
    weight = MAP_COST + EVAL_COST * (n_ref >= max(min_reference, 1))
    if ref_count is not None and ion_ms:
        weight[tuple(slice(m - 1, None) for _ in range(3))] += ion_ms * ref_count
    return weight


def cell_weight(cell_refs: np.ndarray, cell: int, shape, m: int, min_reference: int, ion_ms: float) -> np.ndarray:
    """The cost model per cost cell of `cell`^3 cube origins (cell_refs: reference ions of the voxels
    each owns): its origins, those whose cube at the cell's mean density would hold min_reference,
    and its ions."""
    origins = np.ones(cell_refs.shape)
    for axis, n in enumerate(shape):    # the last cell along an axis may be cut short by the grid
        edge = np.minimum(cell, n + m - 1 - cell * np.arange(cell_refs.shape[axis]))
        origins = origins * edge.reshape([-1 if a == axis else 1 for a in range(3)])
    evaluated = cell_refs / origins * m ** 3 >= max(min_reference, 1)
    return origins * (MAP_COST + EVAL_COST * evaluated) + ion_ms * cell_refs


def decompose(weight: np.ndarray, grid: VoxelGrid, m: int, n_ranks: int, halo_nm: float, axes=(0, 1, 2),
              cell: int = 1) -> list:
    """One Block per rank, balanced on `weight` (cube_weight per cube origin, or cell_weight per
    cost cell of `cell` origins along each axis); `halo_nm` beyond the voxels its cubes cover."""
    first = np.array([-(m - 1)] * 3)
    end = np.array(grid.shape) + m - 1
    origin, v = np.asarray(grid.origin_nm), grid.voxel_nm
    blocks = []
    for r, (lo, hi, w) in enumerate(bisect(weight, n_ranks, axes)):
        lo, hi = first + np.minimum(np.array(lo) * cell, end), first + np.minimum(np.array(hi) * cell, end)
        blocks.append(Block(r, tuple(int(x) for x in lo), tuple(int(x) for x in hi), w,
                            tuple(float(x) for x in origin + lo * v - halo_nm),
                            tuple(float(x) for x in origin + (hi + m - 1) * v + halo_nm)))
    return blocks


def exchange(comm, ions: Ions, first: int, blocks: list) -> tuple[Ions, np.ndarray]:
    """Alltoallv: each rank sends every ion to every block whose box (with halo) contains it, with
    its record index; a rank's ions come back in record order, so anything computed from them is
    the same for any number of ranks."""
    parts = [np.flatnonzero(np.all((ions.xyz >= b.box_lo_nm) & (ions.xyz < b.box_hi_nm), axis=1)) for b in blocks]
    rows = [len(p) for p in parts]
    # one send buffer each, filled in place (stacking per destination, then concatenating, copied
    # every record twice)
    rec, index, at = np.empty((sum(rows), 4), np.float32), np.empty(sum(rows), np.int64), 0
    for p in parts:
        rec[at:at + len(p), :3], rec[at:at + len(p), 3], index[at:at + len(p)] = ions.xyz[p], ions.mq[p], p + first
        at += len(p)
    del parts
    index = alltoallv_packed(comm, index, rows, np.int64, 1)[:, 0]
    rec = alltoallv_packed(comm, rec, rows, np.float32, 4)
    order = np.argsort(index, kind="stable")
    return Ions(np.ascontiguousarray(rec[order, :3]), rec[order, 3]), index[order]


def cells_of(grid: VoxelGrid, m: int, cell: int) -> tuple:
    """Shape of the cost grid: voxels (cell 1) or cells of `cell` cube origins per axis."""
    return grid.shape if cell == 1 else tuple(-(-(n + m - 1) // cell) for n in grid.shape)


def occupied_voxels(grid: VoxelGrid, ions: Ions, is_reference, m: int = 4, cell: int = 1) -> tuple:
    """(flat indices of the voxels, or cost cells (cells_of), that hold reference ions, their
    counts), CHUNK ions at a time."""
    u, c = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    shape = cells_of(grid, m, cell)
    for i in range(0, len(ions), CHUNK):
        ref = ions.xyz[i:i + CHUNK][is_reference(ions.mq[i:i + CHUNK])]
        vox = grid.index(ref) if cell == 1 else (grid.index(ref) + m - 1) // cell
        a, b = np.unique(np.ravel_multi_index(tuple(vox.T), shape), return_counts=True)
        u.append(a)
        c.append(b)
    u, inverse = np.unique(np.concatenate(u), return_inverse=True)
    return u, np.bincount(inverse, np.concatenate(c), minlength=len(u)).astype(np.int64)


def root_counts(comm, occupied: tuple, shape) -> np.ndarray | None:
    """Counts per voxel (or cost cell) on root only of what every rank holds (occupied_voxels):
    ranks send their occupied voxels and counts, not a whole grid."""
    parts = comm.gather(occupied)
    if comm.Get_rank() != 0:
        return None
    u, c = (np.concatenate(x) for x in zip(*parts))
    return np.bincount(u, c, minlength=int(np.prod(shape))).reshape(shape)


@dataclass
class Distributed:
    """A rank's share of the data set after the decomposition."""
    n_total: int                # ions in the file
    grid: VoxelGrid             # the whole data set's voxel grid
    blocks: list                # one Block per rank
    local: Ions                 # this rank's ions with halo, in record order
    record_index: np.ndarray    # their record indices in the file
    block_ref: np.ndarray       # reference ions per cube origin of this rank's block
    phases: dict                # seconds per phase


def distribute(comm, path, drop_invalid: bool, settings, is_reference, min_reference: int, halo_nm: float = 0.0,
               decomposition: str = "blocks", per_ion: bool = False) -> Distributed:
    """Read, decompose and exchange. `is_reference(mq)`: the reference species' mask. The halo
    reaches max(neighbour radius, halo_nm) beyond the voxels a block's cubes cover. Whole-grid
    reference counts are reduced to root only, which cuts the blocks (with the per-ion pass's cost
    if per_ion); every rank counts its own block."""
    t = [time.perf_counter()]
    own = collective(comm, read_own_records, comm, path, drop_invalid)
    counts = comm.allgather(len(own))
    n_total, first = sum(counts), sum(counts[:comm.Get_rank()])   # record index of this rank's first ion
    if n_total == 0:
        raise InputError(path, "no ions")
    t.append(time.perf_counter())
    grid = global_grid(comm, own, settings.voxel_nm)
    # reference ions per voxel, from the ions each rank read (each exactly once, all inside the grid)
    m = settings.cube_voxels
    cell = cost_cell(grid.shape, m)
    ref_count = root_counts(comm, occupied_voxels(grid, own, is_reference, m, cell), cells_of(grid, m, cell))
    t.append(time.perf_counter())
    blocks = None
    if comm.Get_rank() == 0:
        ion_ms, halo = ION_COST + PER_ION_COST * per_ion, max(settings.neighbour_radius_nm, halo_nm)
        if cell == 1:
            n_ref = ref_count
            for axis, starts in enumerate(grid.cube_origins(m, full=True)):
                n_ref = box_sum_axis(n_ref, starts, m, axis)
            weight = cube_weight(n_ref, min_reference, m, ref_count, ion_ms)
        else:
            weight = cell_weight(ref_count, cell, grid.shape, m, min_reference, ion_ms)
        blocks = decompose(weight, grid, m, comm.Get_size(), halo, AXES[decomposition], cell)
    blocks = comm.bcast(blocks)
    t.append(time.perf_counter())
    local, index = exchange(comm, own, first, blocks)
    t.append(time.perf_counter())
    block_ref = blocks[comm.Get_rank()].cube_counts(compact_voxels(grid, local.xyz[is_reference(local.mq)]),
                                                    grid.shape, m)
    phases = dict(zip(("read_s", "counts_s", "decompose_s", "exchange_s"), np.diff(t).tolist()))
    return Distributed(n_total, grid, blocks, local, index, block_ref, phases)
