"""Our own memory-mapped POS/ePOS access: any record range, for per-rank reads of huge files.

POS: big-endian float32 records (x, y, z, m/n), 16 bytes. ePOS: 11 big-endian 4-byte fields,
44 bytes: x, y, z, m/n, TOF, V_dc, V_pulse, det_x, det_y (float32), delta_pulse, ions_per_pulse
(uint32). Only x, y, z, m/n are used here.
"""
import contextlib
import hashlib
import os

import numpy as np

from ..errors import InputError
from ..fileutil import atomic_output

RECORD_BYTES = {".pos": 16, ".epos": 44}


def record_layout(path):
    """Record size and name of a POS/ePOS file, from its extension."""
    ext = os.path.splitext(str(path))[1].lower()
    if ext not in RECORD_BYTES:
        raise InputError(path, f"not a POS/ePOS file (extension {ext or 'none'})")
    return RECORD_BYTES[ext], ext[1:].upper()


def count_records(path) -> int:
    """Number of ions, after checking that the size is a whole number of records."""
    size_bytes, name = record_layout(path)
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    if size == 0:
        raise InputError(path, "file is empty (0 ions)")
    if size % size_bytes:
        raise InputError(path, f"truncated {name} file: {size} bytes is not a multiple of the "
                               f"{size_bytes}-byte record")
    return size // size_bytes


def read_records(path, start: int = 0, stop: int | None = None):
    """Return (xyz float32 [n,3], mq float32 [n]) for records [start, stop) via a memory map."""
    size_bytes, _ = record_layout(path)
    n = count_records(path)
    stop = n if stop is None else min(stop, n)
    if not 0 <= start <= stop:
        raise InputError(path, f"record range [{start}, {stop}) outside 0..{n}")
    if start == stop:
        return np.empty((0, 3), np.float32), np.empty(0, np.float32)
    fields = size_bytes // 4
    mm = np.memmap(path, dtype=">f4", mode="r", offset=start * size_bytes,
                   shape=(stop - start, fields))
    xyz = np.ascontiguousarray(mm[:, :3], dtype=np.float32)
    mq = np.ascontiguousarray(mm[:, 3], dtype=np.float32)
    del mm
    return xyz, mq


class PosWriter:
    """Appends POS records to an open file, hashing them as they go (a streamed file's SHA-256
    without reading it back)."""

    def __init__(self, fh):
        self._fh, self._hash, self.n = fh, hashlib.sha256(), 0

    def append(self, xyz, mq):
        xyz = np.asarray(xyz, dtype=np.float32)
        mq = np.asarray(mq, dtype=np.float32)
        if xyz.ndim != 2 or xyz.shape[1] != 3 or mq.shape != (xyz.shape[0],):
            raise ValueError("a POS chunk needs xyz [n,3] and mq [n]")
        rec = np.empty((xyz.shape[0], 4), dtype=">f4")
        rec[:, :3] = xyz
        rec[:, 3] = mq
        self._fh.write(rec.data)
        self._hash.update(rec.data)
        self.n += len(rec)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


@contextlib.contextmanager
def pos_writer(path, overwrite: bool = True):
    """Yield a PosWriter: records go to a temporary file, renamed to `path` when the block
    succeeds (a POS file of any size written in chunks)."""
    with atomic_output(path, overwrite) as tmp, open(tmp, "wb") as fh:
        yield PosWriter(fh)


def write_pos(path, xyz, mq, overwrite: bool = True):
    """Write a POS file atomically (temporary name, then rename)."""
    with pos_writer(path, overwrite) as w:
        w.append(xyz, mq)
