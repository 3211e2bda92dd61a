"""Ion positions and mass-to-charge from POS, ePOS, APT (AP Suite) and CSV files."""
import logging
import os
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from . import posfile
from .ifes import ifes_module, strict_call

log = logging.getLogger(__name__)
FORMATS = (".pos", ".epos", ".apt", ".csv")


@dataclass
class Ions:
    """A reconstruction: positions in nm (float32 [n,3]) and mass-to-charge in Da (float32 [n])."""

    xyz: np.ndarray
    mq: np.ndarray

    def __len__(self):
        return len(self.mq)


def _extension(path) -> str:
    ext = os.path.splitext(str(path))[1].lower()
    if ext not in FORMATS:
        raise InputError(path, f"unknown ion file extension '{ext or 'none'}' "
                               f"(supported: {', '.join(FORMATS)})")
    if not os.path.isfile(path):
        raise InputError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise InputError(path, "file is empty (0 ions)")
    return ext


# extension -> (ifes module, reader class, what to call the file in messages)
_IFES_READERS = {".pos": ("pos.pos_reader", "ReadPosFileFormat", "POS"),
                 ".epos": ("epos.epos_reader", "ReadEposFileFormat", "ePOS"),
                 ".apt": ("apt.apt6_reader", "ReadAptFileFormat", "APT")}


def _read_ifes(path, ext):
    """Positions and m/n through the ifes reader of this format."""
    if ext in posfile.RECORD_BYTES:
        posfile.count_records(path)  # size checks with our own messages first
    module, cls, what = _IFES_READERS[ext]
    reader = strict_call(path, f"{what} file", getattr(ifes_module(module), cls), str(path))
    xyz = strict_call(path, f"{what} positions", reader.get_reconstructed_positions).magnitude
    mq = strict_call(path, f"{what} mass-to-charge", reader.get_mass_to_charge_state_ratio).magnitude
    if ext == ".apt":   # a header that lies about the ion count means a damaged or cut file
        declared = int(reader.header_section["llIonCount"][0])
        if not declared == len(xyz) == len(mq):
            raise InputError(path, f"APT header declares {declared} ions but the Position and Mass sections "
                                   f"hold {len(xyz)} and {len(mq)}")
    return xyz, mq


def _read_csv(path):
    """x, y, z, m/n columns (comma, semicolon or whitespace separated), optional header line.

    Not through ifes: its reader always takes the first row as a header, so a file without one
    silently loses its first ion.
    """
    with open(path, encoding="utf-8", errors="replace") as fh:
        first, second = fh.readline(), fh.readline()
    fields = first.replace(";", " ").replace(",", " ").split()
    try:
        [float(f) for f in fields]
        skip = 0
    except ValueError:
        skip = 1
    data_line = second if skip else first
    sep = ";" if ";" in data_line else ("," if "," in data_line else None)
    try:
        data = np.loadtxt(path, delimiter=sep, skiprows=skip, ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise InputError(path, f"malformed CSV: {str(exc).splitlines()[0]}") from None
    if data.shape[0] == 0:
        raise InputError(path, "file is empty (0 ions)")
    if data.shape[1] < 4:
        raise InputError(path, f"CSV needs 4 columns x,y,z,m/n; found {data.shape[1]}")
    return data[:, :3], data[:, 3]


def _finish(path, xyz, mq, drop_invalid: bool) -> Ions:
    xyz = np.asarray(xyz, dtype=np.float32).reshape(-1, 3)
    mq = np.asarray(mq, dtype=np.float32).reshape(-1)
    if len(xyz) != len(mq):
        raise InputError(path, f"{len(xyz)} positions but {len(mq)} mass-to-charge values")
    if len(mq) == 0:
        raise InputError(path, "file is empty (0 ions)")
    ok = np.isfinite(xyz).all(axis=1) & np.isfinite(mq)
    n_bad = int(len(ok) - ok.sum())
    if n_bad:
        if not drop_invalid:
            first = int(np.flatnonzero(~ok)[0])
            raise InputError(path, f"{n_bad} ions have NaN/inf coordinates or m/n (first at record "
                                   f"{first}); pass --drop-invalid to discard them")
        log.warning("%s: dropped %d ions with NaN/inf values", path, n_bad)
        xyz, mq = xyz[ok], mq[ok]
        if len(mq) == 0:
            raise InputError(path, "no valid ions left after dropping NaN/inf records")
    return Ions(np.ascontiguousarray(xyz), np.ascontiguousarray(mq))


def read_ions(path, drop_invalid: bool = False) -> Ions:
    """Read a whole reconstruction; NaN/inf records are an error unless `drop_invalid`."""
    ext = _extension(path)
    xyz, mq = _read_csv(path) if ext == ".csv" else _read_ifes(path, ext)
    return _finish(path, xyz, mq, drop_invalid)


def count_ions(path) -> int:
    """Number of ions; cheap (file size) for POS/ePOS."""
    ext = _extension(path)
    if ext in (".pos", ".epos"):
        return posfile.count_records(path)
    return len(read_ions(path, drop_invalid=True))


def ion_record_range(path, start: int, stop: int, drop_invalid: bool = False) -> Ions:
    """Records [start, stop) of a POS/ePOS file through our memory map (per-rank reads)."""
    _extension(path)
    xyz, mq = posfile.read_records(path, start, stop)
    if len(mq) == 0:
        return Ions(xyz, mq)
    return _finish(path, xyz, mq, drop_invalid)
