"""Atomic output files and content hashes (every output names the inputs that made it)."""
import contextlib
import glob
import hashlib
import io
import logging
import os
import shutil
import socket
from pathlib import Path

from .errors import InputError

log = logging.getLogger(__name__)


def check_output(final: Path, overwrite: bool) -> Path:
    """The folder an output goes to, after the checks every output needs (made early by stages
    that work long before they write)."""
    if final.exists() and not overwrite:
        raise InputError(final, "output exists (pass --overwrite to replace it)")
    parent = final.parent if str(final.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(final, f"output directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(final, f"output directory {parent} is not writable")
    remove_stale_temporaries(parent / final.name)
    return parent


def temporary_name(final: Path) -> Path:
    """Where `final` is built before its rename: named for this host and process, so a later run
    can tell a killed run's leftover from a live one's."""
    return final.parent / f".{final.name}.tmp-{socket.gethostname()}-{os.getpid()}"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(final: Path):
    """Remove what a run killed while writing `final` left (temporary_name of this host whose
    process is gone: a killed collective write can leave gigabytes); temporaries of other hosts
    or of live processes stay, and are named in the log."""
    prefix, host = f".{final.name}.tmp-", socket.gethostname()
    for p in final.parent.glob(glob.escape(prefix) + "*"):
        made_on, _, pid = p.name[len(prefix):].rpartition("-")
        if made_on == host and pid == str(os.getpid()):
            continue
        if made_on == host and pid.isdigit() and not _running(int(pid)):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            log.info("removed %s, left by an interrupted run", p)
        else:
            log.warning("%s: the temporary file of a run that may still be writing %s (another host, a "
                        "live process or an older version); remove it if none is", p, final.name)


@contextlib.contextmanager
def atomic_output(final, overwrite: bool = True):
    """Yield a temporary path next to `final`; rename it into place only if the block succeeds.

    A crash, a full disk or an exception leaves no half-written `final` behind, and an
    existing `final` stays intact until the new one is complete.
    """
    final = Path(final)
    parent = check_output(final, overwrite)
    tmp = temporary_name(parent / final.name)
    try:
        yield tmp
        os.replace(tmp, final)
    except OSError as exc:
        raise InputError(final, f"cannot write output: {exc.strerror or exc}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_h5(final, overwrite: bool = True, start_from=None, comm=None):
    """Build an HDF5 file in memory (optionally a copy of `start_from`), then write it out in one
    go through atomic_output: a full disk is then a plain OSError (HDF5 itself can crash on a
    failed write) and `final` appears, or is replaced, only when complete.

    With `comm` (h5py built with MPI) every rank of it opens one temporary file with the mpio
    driver and writes its part collectively; root renames it into place once all ranks have closed
    it, so a rank killed while writing leaves no file under the output's name."""
    import h5py
    if comm is not None:
        with _atomic_mpio(h5py, Path(final), overwrite, comm) as f:
            yield f
        return
    check_output(Path(final), overwrite)
    buf = io.BytesIO(Path(start_from).read_bytes() if start_from else b"")
    with h5py.File(buf, "r+" if start_from else "w") as f:
        yield f
    with atomic_output(final, overwrite) as tmp:
        Path(tmp).write_bytes(buf.getbuffer())


@contextlib.contextmanager
def _atomic_mpio(h5py, final: Path, overwrite: bool, comm):
    from .parallel.mpi import collective
    root = comm.Get_rank() == 0
    tmp = collective(comm, lambda: temporary_name(check_output(final, overwrite) / final.name) if root else None)
    tmp = comm.bcast(tmp)
    try:
        with h5py.File(tmp, "w", driver="mpio", comm=getattr(comm, "base", comm)) as f:
            yield f
        comm.Barrier()
        if root:
            os.replace(tmp, final)
    except OSError as exc:
        raise InputError(final, f"cannot write output: {exc.strerror or exc}") from exc
    finally:
        if root and tmp.exists():
            tmp.unlink()


def sha256_file(path, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file's bytes, streamed so large reconstructions need no memory."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def swap_directory(new: Path, final: Path):
    """Put the complete directory `new` at `final`; an earlier `final` goes only once `new` is
    in place (two renames: at no moment is `final` a half-written directory)."""
    old = final.parent / f".{final.name}.old-{os.getpid()}"
    if final.exists():
        os.replace(final, old)
    os.replace(new, final)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(final, overwrite: bool = False):
    """Like atomic_output for a directory of outputs: fill a temporary directory, then swap it in."""
    final = Path(final)
    parent = check_output(final, overwrite)
    tmp = temporary_name(parent / final.name)
    try:
        tmp.mkdir()
        yield tmp
        swap_directory(tmp, final)
    except OSError as exc:
        raise InputError(final, f"cannot write output: {exc.strerror or exc}") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
