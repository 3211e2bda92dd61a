import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from apt_cnn_hpc.parallel.launcher import local_env, mpiexec  # noqa: F401 (tests import mpiexec from here)

REPO = Path(__file__).resolve().parent.parent
FOREIGN = REPO.parent / "shared" / "data" / "foreign"


def cli_env():
    return local_env()


def run_cli(*args, cwd=None, ranks: int = 0, timeout=900):
    """Run `apt-cnn ARGS` (under mpiexec -n RANKS if ranks > 0); returns CompletedProcess."""
    cmd = [sys.executable, "-m", "apt_cnn_hpc", *map(str, args)]
    if ranks:
        cmd = [mpiexec(), "-n", str(ranks)] + cmd
    return subprocess.run(cmd, cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=timeout)


def assert_clean_error(proc, *needles):
    """Exit 2, one line on stderr naming the problem, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    errors = [l for l in proc.stderr.splitlines() if "error:" in l]
    assert len(errors) == 1, proc.stderr
    for n in needles:
        assert n in errors[0], errors[0]


@pytest.fixture(scope="session")
def small_specimen(tmp_path_factory):
    """A 16 nm cube specimen with a few precipitates (POS, RRNG, truth)."""
    d = tmp_path_factory.mktemp("specimen")
    proc = run_cli("specimen", "--out", d / "s", "--size", 16, 16, 16, "--seed", 11)
    assert proc.returncode == 0, proc.stderr
    return d / "s"


@pytest.fixture(scope="session")
def rank_scans(small_specimen, tmp_path_factory):
    """The small specimen scanned on 1, 2 and 3 ranks with the default model and the Table 1
    model (one pass, two files): {n: SCAN.h5}, the Table 1 scan beside it as scan{n}_table1.h5.
    The 3-rank scan has a memory budget that makes each rank stream its block in several tiles,
    and its per-ion pass streams each rank's ions in slabs of 20,000."""
    d = tmp_path_factory.mktemp("rank_scans")
    (d / "slabs.yaml").write_text("per_ion_slab_ions: 20000\n")
    out = {}
    for n in (1, 2, 3):
        budget = ["--memory-budget", 1350, "--config", d / "slabs.yaml"] if n == 3 else []
        proc = run_cli("scan", f"{small_specimen}.pos", "--range", f"{small_specimen}.rrng",
                       "--out", d / f"scan{n}.h5", d / f"scan{n}_table1.h5", *budget,
                       "--model", REPO / "models" / "default", REPO / "models" / "table1", ranks=n)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out[n] = d / f"scan{n}.h5"
    return out


@pytest.fixture(scope="session")
def scanned_specimen(tmp_path_factory):
    """A 34 nm specimen not used in training (seed 2024), scanned on 2 ranks with the default
    model and the Table 1 model (one scan, two files): {"prefix": PREFIX (PREFIX.pos, .rrng,
    _truth.h5), "scan": SCAN.h5, "scan_table1": SCAN.h5 of the Table 1 model}."""
    d = tmp_path_factory.mktemp("scanned")
    proc = run_cli("specimen", "--out", d / "s", "--size", 34, 34, 34, "--seed", 2024)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("scan", d / "s.pos", "--range", d / "s.rrng", "--out", d / "scan.h5", d / "scan_table1.h5",
                   "--model", REPO / "models" / "default", REPO / "models" / "table1", ranks=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"prefix": d / "s", "scan": d / "scan.h5", "scan_table1": d / "scan_table1.h5"}


def apt_install(*packages, probe: str) -> str | None:
    """Make Debian packages available (installing them with apt-get when `probe` is not on PATH);
    returns None when ready, else the reason they cannot be had (for pytest.skip)."""
    if shutil.which(probe):
        return None
    if not shutil.which("apt-get"):
        return f"{probe} missing and no apt-get to install {' '.join(packages)}"
    if os.geteuid() != 0:
        return f"{probe} missing and installing {' '.join(packages)} needs root"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "install", "-y", "--no-install-recommends", *packages],
                ["apt-get", "update"],
                ["apt-get", "install", "-y", "--no-install-recommends", *packages]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if cmd[1] == "install" and proc.returncode == 0 and shutil.which(probe):
            return None
    return f"apt-get could not install {' '.join(packages)}: {proc.stderr.strip()[-300:]}"


@pytest.fixture
def rng():
    return np.random.default_rng(0)
