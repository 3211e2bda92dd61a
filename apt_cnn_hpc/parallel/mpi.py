"""MPI access that costs nothing when a stage runs alone (mpi4py is imported on first use)."""
import os

from tqdm import tqdm


def comm_world():
    """MPI.COMM_WORLD (a singleton run without mpiexec has size 1)."""
    from mpi4py import MPI
    return MPI.COMM_WORLD


def is_root(comm=None) -> bool:
    return comm is None or comm.Get_rank() == 0


def progress(total: int, desc: str, comm=None, unit: str = "it"):
    """A tqdm bar on rank 0 only (other ranks get a silent one); off when APT_CNN_NO_PROGRESS=1."""
    disable = not is_root(comm) or os.environ.get("APT_CNN_NO_PROGRESS") == "1"
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True)
