"""The reconstruction behind a scan file: found through the scan's provenance, checked by SHA-256."""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..fileutil import sha256_file
from ..io import RangeTable, read_ions, read_ranges
from .voxels import VoxelMap, read_voxel_map


@dataclass
class ScanData:
    path: Path
    voxels: VoxelMap
    xyz: np.ndarray
    species: np.ndarray        # species index per ion (-1 unranged)
    ranges: RangeTable
    input_path: Path
    range_path: Path


def locate(scan_path: Path, prov: dict, role: str, override) -> Path:
    """The file the scan read as `role` ('input' or 'range'): `override` if given (it must be the
    same file), else the recorded absolute path, the recorded path next to the scan, or as given."""
    rec = prov.get("inputs", {}).get(role)
    if rec is None:
        raise InputError(scan_path, f"scan provenance does not name its {role} file")
    if override:
        p = Path(override)
        if not p.is_file():
            raise InputError(p, "file not found")
        if sha256_file(p) != rec["sha256"]:
            raise InputError(p, f"is not the {role} file this scan was made from (SHA-256 differs)")
        return p
    for cand in (rec.get("abspath"), scan_path.parent / rec["path"], rec["path"]):
        if cand and Path(cand).is_file() and sha256_file(cand) == rec["sha256"]:
            return Path(cand)
    flag = "--input" if role == "input" else "--range"
    raise InputError(scan_path, f"cannot find the scan's {role} file {rec['path']} (unchanged); pass {flag}")


def load_scan_data(scan_path, input_override=None, range_override=None) -> ScanData:
    scan_path = Path(scan_path)
    vm = read_voxel_map(scan_path)
    ip = locate(scan_path, vm.provenance, "input", input_override)
    rp = locate(scan_path, vm.provenance, "range", range_override)
    ranges = read_ranges(rp)
    ions = read_ions(ip, drop_invalid=bool(vm.provenance["config"].get("drop_invalid", False)))
    return ScanData(scan_path, vm, ions.xyz.astype(np.float64), ranges.label(ions.mq), ranges, ip, rp)
