"""Per-voxel partial maps and exact cube maps by box sums (docs/design.md section 3).

With partners taken from the whole data set, the map of a cube is the sum over its reference
atoms of each atom's neighbour histogram, so it is the sum of the partial maps of the voxels it
covers. Each atom is histogrammed once instead of cube_voxels**3 times.
"""
from collections import deque
from dataclasses import dataclass

import numpy as np

from .maps import PartnerIndex


@dataclass(frozen=True)
class VoxelGrid:
    """A grid of voxels anchored at whole multiples of voxel_nm (so any subset of the data, on any
    rank, indexes voxels the same way). Voxel (i, j, k) covers origin + [i, i+1) * voxel_nm, ..."""

    origin_nm: tuple
    voxel_nm: float
    shape: tuple

    @classmethod
    def covering(cls, pos: np.ndarray, voxel_nm: float) -> "VoxelGrid":
        lo = np.floor(pos.min(axis=0) / voxel_nm) * voxel_nm
        shape = np.floor((pos.max(axis=0) - lo) / voxel_nm).astype(int) + 1
        return cls(tuple(float(v) for v in lo), float(voxel_nm), tuple(int(s) for s in shape))

    def index(self, pos: np.ndarray) -> np.ndarray:
        """Voxel index (int64 [n, 3]) of each position; may fall outside the grid."""
        return np.floor((pos - np.asarray(self.origin_nm)) / self.voxel_nm).astype(np.int64)

    def cube_origins(self, m: int, full: bool = True) -> list:
        """Per axis, the voxel indices where cubes of m voxels start: every cube that overlaps
        the grid (full: -(m-1)..n-1, so each voxel is covered by m**3 cubes) or only cubes
        inside it (0..n-m)."""
        if full:
            return [np.arange(-(m - 1), n) for n in self.shape]
        return [np.arange(0, max(n - m + 1, 0)) for n in self.shape]


def voxel_layer_maps(index: PartnerIndex, ref_pos, ref_ids, ref_vox, window):
    """Partial zx-maps [nx, ny, bins, bins] of the voxels of one z-layer within the x-y window
    ((x0, x1), (y0, y1)) voxel ranges; ref_* are the reference atoms of that layer inside it."""
    (x0, x1), (y0, y1) = window
    nx, ny = x1 - x0, y1 - y0
    slot = (ref_vox[:, 0].astype(np.int64) - x0) * ny + (ref_vox[:, 1] - y0)
    zx, _ = index.histograms(ref_pos, ref_ids, slot, nx * ny)
    b = index.settings.map_bins
    return zx.reshape(nx, ny, b, b)


def window_sums(a: np.ndarray, m: int, axes=(-3, -2, -1)) -> np.ndarray:
    """Sums of m consecutive entries along each of `axes` (each shorter by m - 1), added in a fixed
    order: a part of an array with its m - 1 following entries gives the same bits as the whole
    (box_sum_axis's running sums do not)."""
    for axis in axes:
        n = a.shape[axis] - m + 1
        at = [slice(None)] * a.ndim
        at[axis] = slice(0, n)
        out = a[tuple(at)].copy()
        for d in range(1, m):
            at[axis] = slice(d, d + n)
            out += a[tuple(at)]
        a = out
    return a


def box_sum_axis(a: np.ndarray, starts: np.ndarray, m: int, axis: int) -> np.ndarray:
    """Sums of m consecutive entries along `axis` starting at `starts` (clipped to the array)."""
    n = a.shape[axis]
    shape = list(a.shape)
    shape[axis] = n + 1
    c = np.zeros(shape, dtype=a.dtype)
    sl = [slice(None)] * a.ndim
    sl[axis] = slice(1, None)
    np.cumsum(a, axis=axis, out=c[tuple(sl)])
    hi = np.clip(starts + m, 0, n)
    lo = np.clip(starts, 0, n)
    return np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis)


def box_sums_xy(a: np.ndarray, ox: np.ndarray, oy: np.ndarray, m: int, rows: int = 10) -> np.ndarray:
    """Box sums of [nx, ny, bins, bins] maps along x at starts ox, then along y at oy, a few map rows
    at a time: the temporaries are a fraction of one layer, not four layers' worth."""
    out = np.empty((len(ox), len(oy)) + a.shape[2:], a.dtype)
    for r in range(0, a.shape[2], rows):
        out[:, :, r:r + rows] = box_sum_axis(box_sum_axis(a[:, :, r:r + rows], ox, m, 0), oy, m, 1)
    return out


def compact_voxels(grid: VoxelGrid, pos, chunk: int = 1 << 20) -> np.ndarray:
    """Voxel indices [n, 3] of positions in the smallest integer type that holds the grid's: a
    rank's references' voxels, made once and kept through its tiles (6 bytes each, not 24), a
    chunk at a time (grid.index's float temporaries of 21 M references are 1 GB)."""
    pos = np.asarray(pos).reshape(-1, 3)
    out = np.empty(pos.shape, np.int16 if max(grid.shape) < 2 ** 15 else np.int32)
    for i in range(0, len(pos), chunk):
        out[i:i + chunk] = grid.index(pos[i:i + chunk])
    return out


def narrowed(counts: np.ndarray) -> np.ndarray:
    """One voxel layer's partial maps as uint16 when every count fits, int32 otherwise: a voxel's
    references put a few pairs in a bin, so the m layers a tile holds cost half (their running sum
    and the cube maps stay int32, exact as before)."""
    return counts.astype(np.uint16) if counts.max(initial=0) < 2 ** 16 else counts


def cube_maps_by_layer(index: PartnerIndex, ref_pos, ref_ids, grid: VoxelGrid, m: int,
                       full: bool = True, z_origins=None, xy_origins=None, ref_vox=None):
    """Yield (kz, maps [n_cx, n_cy, bins, bins]) for each cube z-origin kz (ascending; all of
    grid.cube_origins(m, full)[2] or the given subset), streaming voxel layers so that only m
    layers of partial maps are held at once. Cube x/y origins are grid.cube_origins(m, full)[0/1],
    or the ranges xy_origins ((i0, i1), (j0, j1)) of a tile: then only the voxels those cubes cover
    are histogrammed, so memory goes with the tile's cross-section, not the grid's. ref_vox: the
    references' voxel indices (compact_voxels), when a caller streams many tiles of the same ones."""
    ox, oy, oz = grid.cube_origins(m, full)
    if xy_origins is not None:
        ox, oy = (np.arange(a, b) for a, b in xy_origins)
    if z_origins is not None:
        oz = np.asarray(z_origins)
    nx, ny, nz = grid.shape
    window = tuple((int(np.clip(o[0], 0, n)), int(np.clip(o[-1] + m, 0, n))) if len(o) else (0, 0)
                   for o, n in ((ox, nx), (oy, ny)))
    shape = (window[0][1] - window[0][0], window[1][1] - window[1][0], index.settings.map_bins, index.settings.map_bins)
    # the tile's reference atoms sorted by z-layer, so each layer takes a slice
    ref_vox = compact_voxels(grid, ref_pos) if ref_vox is None else ref_vox
    keep = (ref_vox[:, 0] >= window[0][0]) & (ref_vox[:, 0] < window[0][1])
    keep &= (ref_vox[:, 1] >= window[1][0]) & (ref_vox[:, 1] < window[1][1])
    keep &= (ref_vox[:, 2] >= 0) & (ref_vox[:, 2] < nz)
    inside = np.flatnonzero(keep)
    del keep
    inside = inside[np.argsort(ref_vox[inside, 2], kind="stable")]
    layer_start = np.searchsorted(ref_vox[inside, 2], np.arange(nz + 1))
    layers: deque = deque()
    running = None
    next_layer = max(int(oz[0]), 0) if len(oz) else 0
    for kz in oz:
        top = min(kz + m, nz)          # layers kz..top-1 are inside this cube
        next_layer = max(next_layer, int(kz))
        while next_layer < top:
            sel = inside[layer_start[next_layer]:layer_start[next_layer + 1]]
            layer = narrowed(voxel_layer_maps(index, ref_pos[sel], ref_ids[sel], ref_vox[sel], window))
            if running is None:
                running = layer.astype(np.int32)
            else:
                running += layer
            layers.append((next_layer, layer))
            next_layer += 1
        while layers and layers[0][0] < kz:
            running -= layers.popleft()[1]
        if running is None:  # a cube entirely beyond the top of the grid
            running = np.zeros(shape, np.int32)
        yield int(kz), box_sums_xy(running, ox - window[0][0], oy - window[1][0], m)


def naive_cube_map(index: PartnerIndex, ref_pos, ref_ids, grid: VoxelGrid, origin_vox, m: int):
    """The map of one cube computed directly from its own reference atoms (the reference
    implementation the box sums must equal)."""
    v = grid.index(ref_pos)
    o = np.asarray(origin_vox)
    sel = np.flatnonzero(np.all((v >= o) & (v < o + m) & (v >= 0) & (v < grid.shape), axis=1))
    zx, _ = index.histograms(ref_pos[sel], ref_ids[sel], np.zeros(len(sel), np.int64), 1)
    return zx[0]


def cube_counts(grid: VoxelGrid, vox: np.ndarray, m: int, full: bool = True, weights=None):
    """Per-cube sums [n_cx, n_cy, n_cz] of a per-atom weight (1 = count) over atoms with voxel
    indices `vox`, by the same box sums as the maps (reference counts, truth fractions)."""
    inside = np.all((vox >= 0) & (vox < np.asarray(grid.shape)), axis=1)
    w = np.ones(int(inside.sum())) if weights is None else np.asarray(weights, float)[inside]
    per_voxel = np.zeros(grid.shape, np.float64)
    np.add.at(per_voxel, tuple(vox[inside].T), w)
    out = per_voxel
    for axis, starts in enumerate(grid.cube_origins(m, full)):
        out = box_sum_axis(out, starts, m, axis)
    return out
