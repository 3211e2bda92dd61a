"""Moving the blocks' partial results to the shares their writer holds (scan/shares.py): under
mpiexec -n 3, with the mpio writer's shares (each block's own voxels) and the serial writer's
(everything on rank 0), the shares put together equal the whole-grid computation bit for bit."""
import subprocess
import sys

import numpy as np
import pytest

from apt_cnn_hpc.scan.decompose import Block
from apt_cnn_hpc.scan.shares import WriteShares, even
from apt_cnn_hpc.sdm.voxel import window_sums
from conftest import cli_env, mpiexec

SCRIPT = """
import sys
import numpy as np
from mpi4py import MPI
from apt_cnn_hpc.scan.decompose import Block, bisect
from apt_cnn_hpc.parallel.mpi import CountingComm
from apt_cnn_hpc.scan.shares import WriteShares, to_boxes, to_records
from apt_cnn_hpc.sdm.voxel import window_sums
sys.excepthook = lambda *e: (sys.__excepthook__(*e), MPI.COMM_WORLD.Abort(1))   # one rank failing ends all
comm = CountingComm(MPI.COMM_WORLD)
rank, size = comm.Get_rank(), comm.Get_size()
assert size == 3
nx, parallel = int(sys.argv[1]), sys.argv[2] == "parallel"
m, shape = 4, (nx, 5, 6)
cube_shape = tuple(n + m - 1 for n in shape)
rng = np.random.default_rng(7)
P = rng.random((2,) + cube_shape)                      # two members over the whole cube grid
blocks = [Block(r, tuple(int(v) - m + 1 for v in lo), tuple(int(v) - m + 1 for v in hi), 0.0, (), ())
          for r, (lo, hi, _) in enumerate(bisect(np.ones(cube_shape), size))]
b = blocks[rank]
at = np.asarray(b.lo) + m - 1
mine = P[(slice(None), *(slice(a, a + n) for a, n in zip(at, np.asarray(b.hi) - b.lo)))]
shares = WriteShares.make(parallel, blocks, shape, 1000, m)
halo = [(lo, tuple(h + m - 1 if h > l else h for l, h in zip(lo, hi))) for lo, hi in shares.voxel_boxes]
part = to_boxes(comm, mine, at, halo)
# a part sends each other rank only its overlap with that rank's box and halo (the surface)
overlap = sum(int(np.prod(np.clip(np.minimum(at + mine.shape[1:], h) - np.maximum(at, l), 0, None)))
              for r, (l, h) in enumerate(halo) if r != rank)
assert 0 <= comm.sent["alltoall"] - overlap * 2 * 8 < 100, (comm.sent, overlap)   # + each piece's corner
lo, hi = shares.voxel_boxes[rank]
empty = any(h <= l for l, h in zip(lo, hi))
sums = np.zeros((2, 0, 0, 0)) if empty else window_sums(part, m)
# per-record values held by whichever rank, in any order
order = rng.permutation(1000)
held = np.array_split(order, size)[rank]
values = to_records(comm, held, held.astype(np.float32) * 0.5, shares.records)
got = comm.gather((lo, sums, values))
if rank == 0:
    whole = window_sums(P, m)
    filled = np.zeros_like(whole)
    for lo, s, _ in got:
        filled[(slice(None), *(slice(a, a + n) for a, n in zip(lo, s.shape[1:])))] += s
    assert np.array_equal(filled, whole)
    assert np.array_equal(np.concatenate([g[2] for g in got]), np.arange(1000, dtype=np.float32) * 0.5)
    if not parallel:
        assert all(g[1].size == 0 and g[2].size == 0 for g in got[1:])
    print("OK")
"""


@pytest.mark.parametrize("nx,layout", [(9, "parallel"), (2, "parallel"), (9, "serial")])
def test_shares_equal_the_whole_grid(nx, layout):
    proc = subprocess.run([mpiexec(), "-n", "3", sys.executable, "-c", SCRIPT, str(nx), layout],
                          env=cli_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-3000:]


def test_shares_cover_the_grid_once():
    shape, m = (9, 5, 6), 4
    blocks = [Block(0, (-3, -3, -3), (2, 8, 9), 0, (), ()), Block(1, (2, -3, -3), (9, 8, 4), 0, (), ()),
              Block(2, (2, -3, 4), (9, 8, 9), 0, (), ()), Block(3, (9, 8, 9), (9, 8, 9), 0, (), ())]
    for parallel in (True, False):
        s = WriteShares.make(parallel, blocks, shape, 10, m)
        cover = np.zeros(shape, int)
        for lo, hi in s.voxel_boxes:
            cover[tuple(slice(a, max(a, b)) for a, b in zip(lo, hi))] += 1
        assert np.all(cover == 1)
        rows = s.cube_rows
        assert rows[0][0] == 0 and rows[-1][1] == shape[0] + m - 1
        assert all(rows[r][1] == rows[r + 1][0] for r in range(len(rows) - 1))
        grown = s.grown(2, 2, shape)
        for (lo, hi), (g_lo, g_hi) in zip(s.voxel_boxes, grown):
            if all(b > a for a, b in zip(lo, hi)):
                assert all(gl == max(a - 2, 0) and gh == min(b + 2, n) for a, b, gl, gh, n in zip(lo, hi, g_lo, g_hi, shape))
    assert even(10, 3) == [(0, 3), (3, 6), (6, 10)]


def test_window_sums_are_box_sums():
    a = np.random.default_rng(1).random((7, 6, 5))
    out = window_sums(a, 3)
    assert out.shape == (5, 4, 3)
    assert np.isclose(out[2, 1, 0], a[2:5, 1:4, 0:3].sum())
    # a part with its m - 1 following entries gives the same bits as the whole
    assert np.array_equal(window_sums(a[2:7, 1:6, 0:4], 3), out[2:, 1:, 0:2])
