"""Atomic output files and content hashes (every output names the inputs that made it)."""
import contextlib
import hashlib
import os
import shutil
from pathlib import Path

from .errors import InputError


def _writable_target(final: Path, overwrite: bool) -> Path:
    """The folder an output goes to, after the checks every output needs."""
    if final.exists() and not overwrite:
        raise InputError(final, "output exists (pass --overwrite to replace it)")
    parent = final.parent if str(final.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(final, f"output directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(final, f"output directory {parent} is not writable")
    return parent


@contextlib.contextmanager
def atomic_output(final, overwrite: bool = True):
    """Yield a temporary path next to `final`; rename it into place only if the block succeeds.

    A crash, a full disk or an exception leaves no half-written `final` behind, and an
    existing `final` stays intact until the new one is complete.
    """
    final = Path(final)
    parent = _writable_target(final, overwrite)
    tmp = parent / f".{final.name}.tmp-{os.getpid()}"
    try:
        yield tmp
        os.replace(tmp, final)
    except OSError as exc:
        raise InputError(final, f"cannot write output: {exc.strerror or exc}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()


def sha256_file(path, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file's bytes, streamed so large reconstructions need no memory."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_directory(final, overwrite: bool = False):
    """Like atomic_output for a directory of outputs: fill a temporary directory, then swap it in;
    an earlier directory is replaced only once the new one is complete."""
    final = Path(final)
    parent = _writable_target(final, overwrite)
    tmp = parent / f".{final.name}.tmp-{os.getpid()}"
    old = parent / f".{final.name}.old-{os.getpid()}"
    try:
        tmp.mkdir()
        yield tmp
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
    except OSError as exc:
        raise InputError(final, f"cannot write output: {exc.strerror or exc}") from exc
    finally:
        for d in (tmp, old):
            if d.exists():
                shutil.rmtree(d, ignore_errors=True)
