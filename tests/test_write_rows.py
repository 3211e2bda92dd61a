"""Moving the blocks' partial results to the rows their writer holds (scan/rows.py): under
mpiexec -n 3, with equal shares (the mpio writer's) and with everything on rank 0 (the serial
writer's), the shares put together equal the whole-grid computation bit for bit."""
import subprocess
import sys

import numpy as np
import pytest

from apt_cnn_hpc.scan.rows import WriteRows, even
from apt_cnn_hpc.sdm.voxel import window_sums
from conftest import cli_env, mpiexec

SCRIPT = """
import sys
import numpy as np
from mpi4py import MPI
from apt_cnn_hpc.scan.decompose import bisect
from apt_cnn_hpc.scan.rows import WriteRows, to_records, to_rows
from apt_cnn_hpc.sdm.voxel import window_sums
comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
assert size == 3
nx, parallel = int(sys.argv[1]), sys.argv[2] == "parallel"
m, shape = 4, (nx, 5, 6)
cube_shape = tuple(n + m - 1 for n in shape)
rng = np.random.default_rng(7)
P = rng.random((2,) + cube_shape)                      # two members, the whole cube grid
boxes = bisect(np.ones(cube_shape), size)
lo, hi, _ = boxes[rank]
mine = P[(slice(None), *(slice(a, b) for a, b in zip(lo, hi)))]
rows = WriteRows.make(parallel, size, nx, 1000, m)
part = to_rows(comm, mine, lo, cube_shape, [rows.cube_halo_rows(r) for r in range(size)])
a, b = rows.voxel_rows[rank]
sums = window_sums(part, m) if b > a else np.zeros((2, 0) + shape[1:])
c0, c1 = rows.cube_rows(rank, nx)
cubes = part[:, c0 - a:c1 - a]
# per-record values held by whichever rank, in any order
order = rng.permutation(1000)
held = np.array_split(order, size)[rank]
values = to_records(comm, held, held.astype(np.float32) * 0.5, rows.records)
got = comm.gather((sums, cubes, values))
if rank == 0:
    whole = window_sums(P, m)
    assert np.array_equal(np.concatenate([g[0] for g in got], axis=1), whole)
    assert np.array_equal(np.concatenate([g[1] for g in got], axis=1), P)
    assert np.array_equal(np.concatenate([g[2] for g in got]), np.arange(1000, dtype=np.float32) * 0.5)
    if not parallel:
        assert all(g[0].shape[1] == 0 and g[2].size == 0 for g in got[1:])
    print("OK")
"""


@pytest.mark.parametrize("nx,layout", [(9, "parallel"), (2, "parallel"), (9, "serial")])
def test_shares_equal_the_whole_grid(nx, layout):
    proc = subprocess.run([mpiexec(), "-n", "3", sys.executable, "-c", SCRIPT, str(nx), layout],
                          env=cli_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-3000:]


def test_cube_rows_cover_the_cube_grid_once():
    for nx, size in ((9, 3), (2, 3), (1, 4), (30, 7)):
        for parallel in (True, False):
            rows = WriteRows.make(parallel, size, nx, 10, 4)
            spans = [rows.cube_rows(r, nx) for r in range(size)]
            assert spans[0][0] == 0 and spans[-1][1] == nx + 3
            assert all(spans[r][1] == spans[r + 1][0] for r in range(size - 1))
            for r, (c0, c1) in enumerate(spans):   # within the rows the share receives
                h0, h1 = rows.cube_halo_rows(r)
                assert c0 == c1 or (h0 <= c0 and c1 <= h1)
    assert even(10, 3) == [(0, 3), (3, 6), (6, 10)]


def test_window_sums_are_box_sums():
    a = np.random.default_rng(1).random((7, 6, 5))
    out = window_sums(a, 3)
    assert out.shape == (5, 4, 3)
    assert np.isclose(out[2, 1, 0], a[2:5, 1:4, 0:3].sum())
    # a share of rows with its m - 1 halo rows gives the same bits as the whole
    assert np.array_equal(window_sums(a[2:7], 3), out[2:])
