"""Where mpiexec is, and the environment a local launch needs, without importing MPI (a parent
process that only launches must not initialise MPI itself)."""
import os
import shutil
import sys
from pathlib import Path

# Open MPI as root and with more ranks than cores (4.x and 5.x spell it differently; MPICH ignores
# both)
LOCAL_MPI_ENV = {
    "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_rmaps_base_oversubscribe": "1",
    "PRTE_MCA_rmaps_default_mapping_policy": ":oversubscribe",
}


def mpiexec() -> str | None:
    """The mpiexec of this Python's MPI: the venv's own (pip Open MPI) beside the interpreter,
    else the one on PATH (a site MPI that mpi4py was built against); None if there is none."""
    return shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")


def local_env(**extra) -> dict:
    """os.environ plus LOCAL_MPI_ENV, no progress bars or TensorFlow chatter, and EXTRA: for
    launching stages on this machine whose output a bench or a test reads."""
    return {**os.environ, **LOCAL_MPI_ENV, "APT_CNN_NO_PROGRESS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", **extra}
