"""The parallel-HDF5 writer (`writer: mpio`): every rank writes its own rows of the scan file
collectively. It needs h5py built with MPI: `make test-mpio` builds such a venv (.venv-mpio,
Debian's Open MPI and parallel HDF5) and runs this file there with APT_CNN_REQUIRE_MPIO=1, as CI
does; elsewhere these tests skip, and with that variable set a serial h5py makes them fail."""
import json
import os
import sys

import h5py
import numpy as np
import pytest

from conftest import REPO, cli_env, mpiexec

pytestmark = pytest.mark.skipif(not h5py.get_config().mpi and os.environ.get("APT_CNN_REQUIRE_MPIO") != "1",
                                reason="h5py without MPI (make test-mpio runs these)")

KILL_WRITER = """
import os, signal, sys
from mpi4py import MPI
import apt_cnn_hpc.contracts.scan_file as scan_file
write = scan_file._write_at
def killing(d, start, a, mpio):
    if MPI.COMM_WORLD.Get_rank() == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    write(d, start, a, mpio)
scan_file._write_at = killing
from apt_cnn_hpc.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_scan(specimen, out, ranks, *extra, script=None):
    import subprocess
    py = [sys.executable, "-c", script] if script else [sys.executable, "-m", "apt_cnn_hpc"]
    cmd = [mpiexec(), "-n", str(ranks), *py, "scan", f"{specimen}.pos", "--range", f"{specimen}.rrng",
           "--out", str(out), "--memory-budget", "1350", *map(str, extra)]
    return subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=900, cwd=REPO)


def contents(path) -> dict:
    """Every dataset (values, dtype, chunks) and attribute of a scan file but its provenance."""
    out = {}
    with h5py.File(path) as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = (obj[()], obj.dtype, obj.chunks, dict(obj.attrs))
            elif name != "provenance":
                out[name] = dict(obj.attrs)
        f.visititems(visit)
        out["/"] = {k: v for k, v in f.attrs.items() if k != "n_ranks"}
    return out


@pytest.fixture(scope="module")
def serial_scan(small_specimen, tmp_path_factory):
    out = tmp_path_factory.mktemp("mpio") / "serial.h5"
    proc = run_scan(small_specimen, out, 1, "--writer", "serial")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.mark.parametrize("ranks", [2, 3])
def test_mpio_file_equals_serial(serial_scan, small_specimen, tmp_path, ranks):
    out = tmp_path / "mpio.h5"
    proc = run_scan(small_specimen, out, ranks, "--writer", "mpio")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with h5py.File(out) as f:
        prov = json.loads(f["provenance"].attrs["json"])
        assert prov["writer"] == "mpio" and f.attrs["n_ranks"] == ranks
        assert f["voxels/probability_sum"].chunks is not None
        # every rank wrote (its bytes to others: its cube results for the others' rows, no grid to root)
        assert all(t["bytes_sent"].get("alltoall", 0) > 0 for t in prov["timings_per_rank"])
    with h5py.File(serial_scan) as f:
        assert json.loads(f["provenance"].attrs["json"])["writer"] == "serial"
    a, b = contents(serial_scan), contents(out)
    assert a.keys() == b.keys()
    for name in a:
        if isinstance(a[name], tuple):
            np.testing.assert_array_equal(b[name][0], a[name][0], err_msg=name)
            assert b[name][1:3] == a[name][1:3], name
            assert str(b[name][3]) == str(a[name][3]), name
        else:
            assert str(b[name]) == str(a[name]), name
    assert out.with_suffix(".xdmf").read_text() == serial_scan.with_suffix(".xdmf").read_text().replace(
        serial_scan.name, out.name)


def test_killed_rank_leaves_no_file_and_restart_resumes(serial_scan, small_specimen, tmp_path):
    out = tmp_path / "killed.h5"
    proc = run_scan(small_specimen, out, 3, "--writer", "mpio", script=KILL_WRITER)
    assert proc.returncode != 0
    assert not out.exists()
    layers = list((tmp_path / "killed.h5.partial").glob("layers_*.npz"))
    assert layers, "the checkpoints of the finished layers are kept for the restart"
    proc = run_scan(small_specimen, out, 3, "--writer", "mpio")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "restored" in proc.stderr
    assert not (tmp_path / "killed.h5.partial").exists()
    assert not list(tmp_path.glob(".killed.h5.tmp-*")), "the killed write's temporary file is removed"
    a, b = contents(serial_scan), contents(out)
    for name in ("voxels/probability_sum", "cubes/probability", "ions/l12_probability"):
        np.testing.assert_array_equal(b[name][0], a[name][0], err_msg=name)

