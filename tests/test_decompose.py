"""The scan's decomposition: blocks partition the cube origins, balance the cost model, cut across
the long axis of needles and wide sections alike, own every voxel once, and tile within budget."""
import numpy as np
import pytest

from apt_cnn_hpc.scan.budget import BASE_MB, BYTES_PER_ION, LAYERS_HELD, MB_PER_BATCH_MAP, tile_voxels
from apt_cnn_hpc.scan.decompose import EVAL_COST, MAP_COST, cell_weight, cost_cell, cube_weight, decompose
from apt_cnn_hpc.sdm import VoxelGrid

M = 4


def cone_refs(shape, half_angle_deg=12.0):
    """Reference ions per cube origin of a cone along z (wide end at the top): 400 inside, 0 outside."""
    ox, oy, oz = (np.arange(-(M - 1), n) for n in shape)
    x, y, z = np.meshgrid(ox - shape[0] / 2, oy - shape[1] / 2, oz, indexing="ij")
    radius = 3 + z * np.tan(np.radians(half_angle_deg))
    return np.where(x ** 2 + y ** 2 < radius ** 2, 400.0, 0.0)


def blocks_of(shape, n_ranks, axes=(0, 1, 2), refs=None):
    grid = VoxelGrid((0.0, 0.0, 0.0), 1.0, shape)
    n_ref = np.full(tuple(n + M - 1 for n in shape), 400.0) if refs is None else refs
    return grid, n_ref, decompose(cube_weight(n_ref, 300, M), grid, M, n_ranks, 3.5, axes)


@pytest.mark.parametrize("shape, n_ranks, axes", [((60, 60, 12), 4, (0, 1, 2)), ((20, 20, 200), 4, (0, 1, 2)),
                                                  ((40, 40, 60), 3, (0, 1, 2)), ((40, 40, 60), 5, (2,)),
                                                  ((30, 30, 120), 7, (0, 1, 2))])
def test_blocks_partition_the_cube_origins_and_own_every_voxel_once(shape, n_ranks, axes):
    grid, n_ref, blocks = blocks_of(shape, n_ranks, axes)
    cover = np.zeros(n_ref.shape, int)
    for b in blocks:
        cover[tuple(slice(lo + M - 1, hi + M - 1) for lo, hi in zip(b.lo, b.hi))] += 1
    assert (cover == 1).all()
    vox = np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"), -1).reshape(-1, 3)
    owners = sum(b.owns(vox, shape).astype(int) for b in blocks)
    assert (owners == 1).all()
    if axes == (2,):
        assert all(b.lo[:2] == (-(M - 1),) * 2 and b.hi[:2] == shape[:2] for b in blocks)


def test_cuts_follow_the_long_axis():
    """A wide, short section is cut in x and y (each rank's map window shrinks); a needle along z."""
    _, _, section = blocks_of((60, 60, 12), 4)
    assert all(b.lo[2] == -(M - 1) and b.hi[2] == 12 for b in section)
    assert all((b.hi[0] - b.lo[0]) * (b.hi[1] - b.lo[1]) < 0.3 * 63 * 63 for b in section)
    _, _, needle = blocks_of((20, 20, 200), 4)
    assert all(b.lo[:2] == (-(M - 1),) * 2 and b.hi[:2] == (20, 20) for b in needle)


@pytest.mark.parametrize("n_ranks", [2, 3, 4])
def test_cost_balances_a_cone(n_ranks):
    """Equal shares of the cost model on a cone, whose cross-section grows along z."""
    shape = (60, 60, 120)
    refs = cone_refs(shape)
    _, _, blocks = blocks_of(shape, n_ranks, refs=refs)
    w = np.array([b.weight for b in blocks])
    assert np.isclose(w.sum(), (MAP_COST + EVAL_COST * (refs >= 300)).sum())
    assert w.max() / w.mean() < 1.05, w


@pytest.mark.parametrize("n_ranks", [2, 3])
def test_per_ion_cost_balances_the_ions_a_rank_owns(n_ranks):
    """Where the per-ion pass dominates, a dense half of the specimen gets more ranks: the ions
    each rank owns come out about equal (the cube-only model would give the dense ranks ~4x)."""
    shape = (30, 30, 60)
    grid = VoxelGrid((0.0, 0.0, 0.0), 1.0, shape)
    ref_count = np.full(shape, 10.0)
    ref_count[:, :, :30] = 40.0
    n_ref = np.full(tuple(n + M - 1 for n in shape), 400.0)
    vox = np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"), -1).reshape(-1, 3)

    def owned(blocks):
        return np.array([ref_count.reshape(-1)[b.owns(vox, shape)].sum() for b in blocks])
    plain = owned(decompose(cube_weight(n_ref, 300, M), grid, M, n_ranks, 3.5))
    ions = owned(decompose(cube_weight(n_ref, 300, M, ref_count, 20.0), grid, M, n_ranks, 3.5))
    assert plain.max() / plain.mean() > 1.3
    assert ions.max() / ions.mean() < 1.05, ions


@pytest.mark.parametrize("n_ranks", [2, 5, 8])
def test_coarse_cost_cells_partition_and_balance(monkeypatch, n_ranks):
    """A grid over MAX_COST_CELLS is cut on cells of several cube origins (what root holds for 10^9
    ions): the blocks still partition every cube origin and own every voxel once, and balance the
    exact per-origin cost of a cone within the cells' granularity."""
    import apt_cnn_hpc.scan.decompose as dec
    shape = (40, 40, 90)
    assert cost_cell(shape, M) == 1
    monkeypatch.setattr(dec, "MAX_COST_CELLS", 30_000)
    cell = cost_cell(shape, M)
    assert cell == 2
    grid = VoxelGrid((0.0, 0.0, 0.0), 1.0, shape)
    ox, oy, oz = np.meshgrid(*(np.arange(n) - n / 2 for n in shape), indexing="ij")
    ref_count = np.where(ox ** 2 + oy ** 2 < (4 + 0.2 * (oz + 45)) ** 2, 30.0, 0.0)   # a cone along z
    cells = np.zeros(dec.cells_of(grid, M, cell))
    v = np.argwhere(ref_count > 0)
    np.add.at(cells, tuple(((v + M - 1) // cell).T), ref_count[tuple(v.T)])
    weight = cell_weight(cells, cell, shape, M, 300, 0.04)
    whole = np.zeros(tuple(n + M - 1 for n in shape))
    whole[M - 1:, M - 1:, M - 1:] = ref_count
    for axis, starts in enumerate(grid.cube_origins(M, full=True)):
        whole = dec.box_sum_axis(whole, starts, M, axis)
    exact = cube_weight(whole, 300, M, ref_count, 0.04)
    assert np.isclose(weight.sum(), exact.sum(), rtol=0.02)
    blocks = decompose(weight, grid, M, n_ranks, 3.5, cell=cell)
    cover = np.zeros(exact.shape, int)
    for b in blocks:
        cover[tuple(slice(lo + M - 1, hi + M - 1) for lo, hi in zip(b.lo, b.hi))] += 1
    assert (cover == 1).all()
    cost = np.array([exact[tuple(slice(lo + M - 1, hi + M - 1) for lo, hi in zip(b.lo, b.hi))].sum() for b in blocks])
    assert cost.max() / cost.mean() < 1.15, cost


def test_tiles_cover_a_block_within_the_budget():
    grid, n_ref, blocks = blocks_of((86, 86, 40), 1)
    b = blocks[0]
    for max_voxels in (100000, 2000, 700, 40, 5):
        tiles = b.tiles(max_voxels, M)
        cover = np.zeros((b.hi[0] - b.lo[0], b.hi[1] - b.lo[1]), int)
        for (i0, i1), (j0, j1) in tiles:
            cover[i0 - b.lo[0]:i1 - b.lo[0], j0 - b.lo[1]:j1 - b.lo[1]] += 1
            assert (i1 - i0 + M - 1) * (j1 - j0 + M - 1) <= max(max_voxels, M * M)
        assert (cover == 1).all()
    assert len(b.tiles(100000, M)) == 1 and len(b.tiles(2000, M)) <= 6


def test_budget_sets_the_tile():
    """More ions, a larger batch or a smaller budget leave fewer voxel columns for the tile's maps;
    never below a cube."""
    big = tile_voxels(3584, 1_000_000, 10 ** 5, 3, 64, 150, M)
    assert big > tile_voxels(3584, 10_000_000, 10 ** 5, 3, 64, 150, M) > M * M
    assert big > tile_voxels(3584, 1_000_000, 10 ** 5, 3, 256, 150, M)
    assert tile_voxels(1000, 1_000_000, 10 ** 5, 3, 64, 150, M) == M * M
    # the window it allows costs what the budget leaves
    column_mb = LAYERS_HELD * 150 * 150 * 4 / 2 ** 20
    left_mb = 3584 - BASE_MB - 64 * MB_PER_BATCH_MAP - (1_000_000 * BYTES_PER_ION + 10 ** 5 * 8 * 3) / 2 ** 20
    assert 0 <= left_mb - big * column_mb < column_mb


def test_block_counts_equal_the_whole_grids():
    """A rank counts its own block's references per cube: the whole grid's counts, cut out."""
    from apt_cnn_hpc.sdm import cube_counts
    shape = (23, 17, 30)
    grid, n_ref, blocks = blocks_of(shape, 5)
    rng = np.random.default_rng(4)
    vox = rng.integers(0, shape, (20000, 3))
    whole = cube_counts(grid, vox, M, full=True)
    for b in blocks:
        got = b.cube_counts(vox, shape, M)
        np.testing.assert_array_equal(got, whole[tuple(slice(lo + M - 1, hi + M - 1) for lo, hi in zip(b.lo, b.hi))])


def test_per_ion_slabs_hold_at_most_their_share():
    """The per-ion pass's slabs along one axis: every coordinate in exactly one, none much above
    slab_ions, one open slab when they fit."""
    from apt_cnn_hpc.scan.ion_probability import slab_edges
    u = np.random.default_rng(5).normal(0, 10, 100_000)
    for slab_ions, slabs in ((20_000, 5), (33_000, 4), (10 ** 6, 1)):
        edges = slab_edges(u, slab_ions)
        assert len(edges) == slabs + 1 and edges[0] == -np.inf and edges[-1] == np.inf
        counts = np.histogram(u, edges)[0]
        assert counts.sum() == len(u) and counts.max() <= slab_ions * 1.01


def test_chunked_indexing_equals_the_whole_arrays(monkeypatch):
    """The memory-lean paths (cell ids in one numba pass, occupied voxels and block counts a chunk
    at a time) give what numpy gives on all the ions at once."""
    import apt_cnn_hpc.scan.decompose as dec
    from apt_cnn_hpc.io import Ions
    from apt_cnn_hpc.sdm.kernels import cell_ids
    rng = np.random.default_rng(11)
    xyz = rng.uniform([-7.3, -2.1, 0.4], [9.9, 12.5, 30.2], (50_000, 3)).astype(np.float32)
    mq = rng.choice([7.0, 13.5, 27.0], len(xyz)).astype(np.float32)
    origin, cell = np.floor(xyz.min(axis=0) / 1.25) * 1.25, 1.25
    dims = np.floor((xyz.max(axis=0) - origin) / cell).astype(np.int64) + 1
    c = np.floor((xyz.astype(np.float64) - origin) / cell).astype(np.int64)
    np.testing.assert_array_equal(cell_ids(xyz.astype(np.float64), origin, cell, dims),
                                  (c[:, 0] * dims[1] + c[:, 1]) * dims[2] + c[:, 2])
    monkeypatch.setattr(dec, "CHUNK", 4096)
    grid = VoxelGrid.covering(np.vstack([xyz.min(axis=0), xyz.max(axis=0)]).astype(np.float64), 1.0)
    is_ref = lambda q: q == 27.0   # noqa: E731
    flat = np.ravel_multi_index(tuple(grid.index(xyz[is_ref(mq)].astype(np.float64)).T), grid.shape)
    u, n = dec.occupied_voxels(grid, Ions(xyz, mq), is_ref)
    want_u, want_n = np.unique(flat, return_counts=True)
    np.testing.assert_array_equal(u, want_u)
    np.testing.assert_array_equal(n, want_n)
    from apt_cnn_hpc.sdm import cube_counts
    whole = cube_counts(grid, grid.index(xyz[is_ref(mq)].astype(np.float64)), M, full=True)
    block = dec.decompose(cube_weight(whole, 1, M), grid, M, 3, 3.5)[1]
    got = block.cube_counts(grid.index(xyz[is_ref(mq)].astype(np.float64)), grid.shape, M)
    np.testing.assert_array_equal(got, whole[tuple(slice(lo + M - 1, hi + M - 1) for lo, hi in zip(block.lo, block.hi))])
