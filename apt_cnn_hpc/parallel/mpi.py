"""MPI access that costs nothing when a stage runs alone (mpi4py is imported on first use)."""
import logging
import os

import numpy as np
from tqdm import tqdm

from ..errors import InputError

log = logging.getLogger(__name__)


def cores_per_rank(comm) -> int:
    """The cores this rank may use: its CPU affinity shared among the ranks on its node."""
    from mpi4py import MPI
    cores = len(os.sched_getaffinity(0))
    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    on_node = local.Get_size()
    # ranks bound to their own cores see only those; unbound ranks see the whole node
    same_mask = local.allreduce(cores, op=MPI.MIN) == local.allreduce(cores, op=MPI.MAX)
    local.Free()
    return max(1, cores // on_node) if same_mask and cores >= on_node else cores


def comm_world():
    """MPI.COMM_WORLD (a singleton run without mpiexec has size 1), with numba's thread count
    set to the cores this rank owns so ranks do not oversubscribe the node."""
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    n = cores_per_rank(comm)
    import numba
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    log.debug("rank %d of %d: %d threads", comm.Get_rank(), comm.Get_size(), n)
    return comm


def is_root(comm=None) -> bool:
    return comm is None or comm.Get_rank() == 0


def progress(total: int, desc: str, comm=None, unit: str = "it"):
    """A tqdm bar on rank 0 only (other ranks get a silent one); off when APT_CNN_NO_PROGRESS=1."""
    disable = not is_root(comm) or os.environ.get("APT_CNN_NO_PROGRESS") == "1"
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True)


def configure_tensorflow(comm):
    """TensorFlow threads = the cores this rank owns (call before TensorFlow runs anything)."""
    import tensorflow as tf
    n = cores_per_rank(comm)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised in this process
        pass


def collective(comm, fn, *args, **kwargs):
    """Run fn on every rank; if it raises InputError anywhere, raise the first one everywhere
    (so all ranks stop together with one message instead of some waiting forever)."""
    err, out = None, None
    try:
        out = fn(*args, **kwargs)
    except InputError as exc:
        err = (exc.path, exc.problem)
    errors = comm.allgather(err)
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        exc = InputError(*first)
        exc.collective = True   # every rank has it: only rank 0 needs to say it
        raise exc
    return out


def reduce_array(comm, a, root: int = 0):
    """Element-wise sum of a float64 array on root only (None elsewhere): the grids only the writer
    needs are not duplicated on every rank."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    out = np.empty_like(a) if comm.Get_rank() == root else None
    comm.Reduce(a, out, op=_mpi().SUM, root=root)
    return out


def allreduce_array(comm, a, op=None):
    """Element-wise reduction of a float64 array over all ranks (buffer-based, no pickling)."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    out = np.empty_like(a)
    comm.Allreduce(a, out, op=op or _mpi().SUM)
    return out


def _mpi():
    from mpi4py import MPI
    return MPI
