"""The fast algorithms equal the naive ones: numba kernel vs brute force, voxel sums vs per-cube."""
import numpy as np

from apt_cnn_hpc.crystal import load_structure
from apt_cnn_hpc.crystal.block import BlockParams, simulate_block
from apt_cnn_hpc.crystal.detector import Instrument
from apt_cnn_hpc.sdm import PartnerIndex, SDMSettings, VoxelGrid, cube_maps_by_layer, naive_cube_map


def test_kernel_equals_brute_force(rng):
    s = SDMSettings()
    pos = rng.uniform(0, 4, (600, 3))
    ids = np.arange(600)
    part = rng.random(600) < 0.7
    ref = rng.random(600) < 0.5
    idx = PartnerIndex(pos[part], ids[part], s)
    zx, z = idx.histograms(pos[ref], ids[ref], np.zeros(ref.sum(), np.int64), 1, z=True)
    d = pos[part][None, :, :] - pos[ref][:, None, :]
    keep = (np.sum(d ** 2, axis=2) < s.neighbour_radius_nm ** 2) & (ids[part][None, :] != ids[ref][:, None])
    d = d[keep]
    want, _, _ = np.histogram2d(d[:, 2], d[:, 0], bins=[s.zx_edges(), s.zx_edges()])
    want_z, _ = np.histogram(d[:, 2], bins=s.z_edges())
    np.testing.assert_array_equal(zx[0], want)
    np.testing.assert_array_equal(z[0], want_z)
    assert z[0].sum() == keep.sum()  # every pair in the sphere lands in the z-SDM


def al_block(seed):
    """The Al atoms of a simulated 3.5 nm L1_2 block: (partner index, positions, ids, grid, m)."""
    s = SDMSettings()
    pos, spec, names, _ = simulate_block(load_structure("l12_al3limg"), BlockParams(Instrument(0.5, 0.3, 0.03)),
                                      3.5, np.random.default_rng(seed))
    al = spec == names.index("Al")
    pos, ids = pos[al], np.arange(len(pos))[al]
    return PartnerIndex(pos, ids, s), pos, ids, VoxelGrid.covering(pos, s.voxel_nm), s.cube_voxels


def test_voxel_sum_cubes_equal_naive_cubes():
    idx, pos, ids, grid, m = al_block(2)
    ox, oy, oz = grid.cube_origins(m, full=True)
    seen = checked = 0
    for kz, maps in cube_maps_by_layer(idx, pos, ids, grid, m, full=True):
        assert maps.shape[:2] == (len(ox), len(oy))
        for a in range(0, len(ox), 2):
            for b in range(0, len(oy), 3):
                want = naive_cube_map(idx, pos, ids, grid, (ox[a], oy[b], kz), m)
                np.testing.assert_array_equal(maps[a, b], want)
                checked += 1
                seen += want.sum() > 0
    assert checked > 100 and seen > 50
    # the full set of cubes counts every reference atom m**3 times
    total = sum(maps.sum() for _, maps in cube_maps_by_layer(idx, pos, ids, grid, m))
    single, _ = idx.histograms(pos, ids, np.zeros(len(pos), np.int64), 1)
    assert total == m ** 3 * single.sum()


def test_tile_cube_maps_equal_the_whole_grids():
    """A tile of cube origins (the scan's unit of memory) histograms only the voxels its cubes
    cover and gives the same maps as the whole grid, at the grid's edges and inside."""
    idx, pos, ids, grid, m = al_block(3)
    ox, oy, oz = grid.cube_origins(m, full=True)
    whole = dict(cube_maps_by_layer(idx, pos, ids, grid, m, full=True))
    cuts_x, cuts_y = [ox[0], ox[0] + 2, 2, ox[-1] + 1], [oy[0], 1, oy[-1] + 1]
    z = oz[1:-1:2]
    for i0, i1 in zip(cuts_x[:-1], cuts_x[1:]):
        for j0, j1 in zip(cuts_y[:-1], cuts_y[1:]):
            got = dict(cube_maps_by_layer(idx, pos, ids, grid, m, z_origins=z, xy_origins=((i0, i1), (j0, j1))))
            assert sorted(got) == [int(k) for k in z]
            for kz, maps in got.items():
                np.testing.assert_array_equal(maps, whole[kz][i0 - ox[0]:i1 - ox[0], j0 - oy[0]:j1 - oy[0]])


def test_narrowed_layers_keep_every_count():
    """A voxel layer's partial maps are held as uint16 only when every count fits."""
    from apt_cnn_hpc.sdm.voxel import narrowed
    fits, over = np.array([[0, 3, 65535]], np.int32), np.array([[0, 3, 65536]], np.int32)
    assert narrowed(fits).dtype == np.uint16 and np.array_equal(narrowed(fits), fits)
    assert narrowed(over).dtype == np.int32 and np.array_equal(narrowed(over), over)
