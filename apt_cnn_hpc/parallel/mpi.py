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


def allreduce_array(comm, a, op=None):
    """Element-wise reduction of a float64 array over all ranks (buffer-based, no pickling)."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    out = np.empty_like(a)
    comm.Allreduce(a, out, op=op or _mpi().SUM)
    return out


def alltoallv_rows(comm, blocks: list, dtype, width: int) -> np.ndarray:
    """Alltoallv of one block of `width`-wide rows per destination rank (buffers, no pickling);
    the rows received, in rank order."""
    send = np.concatenate(blocks) if blocks else np.zeros(0, dtype)
    return alltoallv_packed(comm, send, [b.size // width for b in blocks], dtype, width)


def alltoallv_packed(comm, send: np.ndarray, rows: list, dtype, width: int) -> np.ndarray:
    """alltoallv_rows of rows already packed in destination order (`rows` per destination rank):
    a caller that fills one buffer saves the concatenation's copy."""
    from mpi4py.util.dtlib import from_numpy_dtype
    mpi_type = from_numpy_dtype(np.dtype(dtype))
    send = send.reshape(-1)
    send_counts = np.array(rows, np.int64) * width
    recv_counts = np.empty(comm.Get_size(), np.int64)
    comm.Alltoall(send_counts, recv_counts)
    sdispl = np.concatenate([[0], np.cumsum(send_counts)[:-1]])
    rdispl = np.concatenate([[0], np.cumsum(recv_counts)[:-1]])
    recv = np.empty(int(recv_counts.sum()), dtype)
    comm.Alltoallv([np.ascontiguousarray(send, dtype), (send_counts, sdispl), mpi_type],
                   [recv, (recv_counts, rdispl), mpi_type])
    return recv.reshape(-1, width)


def _nbytes(obj) -> int:
    """Bytes of what a lower-case (pickling) call sends: arrays by size, containers by their items."""
    if obj is None:
        return 0
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(o) for o in obj)
    import pickle
    return len(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


class CountingComm:
    """A communicator that counts the bytes this rank sends to others (`sent`, per operation), for
    the scan's record of its communication; everything else goes to the wrapped communicator."""

    def __init__(self, comm):
        self._comm = comm
        self.sent = {}

    def __getattr__(self, name):
        return getattr(self._comm, name)

    @property
    def base(self):
        """The wrapped mpi4py communicator (what h5py's mpio driver takes)."""
        return self._comm

    def _add(self, op: str, n: int):
        self.sent[op] = self.sent.get(op, 0) + int(n)

    def bcast(self, obj, root=0):
        if self._comm.Get_rank() == root:
            self._add("bcast", _nbytes(obj) * (self._comm.Get_size() - 1))
        return self._comm.bcast(obj, root=root)

    def gather(self, obj, root=0):
        if self._comm.Get_rank() != root:
            self._add("gather", _nbytes(obj))
        return self._comm.gather(obj, root=root)

    def scatter(self, objs, root=0):
        if self._comm.Get_rank() == root:
            self._add("scatter", sum(_nbytes(o) for i, o in enumerate(objs) if i != root))
        return self._comm.scatter(objs, root=root)

    def allgather(self, obj):
        self._add("allgather", _nbytes(obj) * (self._comm.Get_size() - 1))
        return self._comm.allgather(obj)

    def alltoall(self, objs):
        mine = self._comm.Get_rank()
        self._add("alltoall", sum(_nbytes(o) for i, o in enumerate(objs) if i != mine))
        return self._comm.alltoall(objs)

    def Allreduce(self, send, recv, op=None):
        self._add("Allreduce", np.asarray(send).nbytes)
        return self._comm.Allreduce(send, recv, op=op or _mpi().SUM)

    def Alltoallv(self, send, recv):
        buf, (counts, _), _ = send
        mine = self._comm.Get_rank()
        self._add("Alltoallv", sum(int(c) for i, c in enumerate(counts) if i != mine) * np.asarray(buf).itemsize)
        return self._comm.Alltoallv(send, recv)


def _mpi():
    from mpi4py import MPI
    return MPI
