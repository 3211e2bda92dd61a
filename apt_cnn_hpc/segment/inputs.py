"""What every recognition method reads: the scan file and the reconstruction behind it (found
through the scan's provenance, checked by SHA-256)."""
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..contracts.scan_file import Cubes, VoxelMap, read_cubes, read_ion_probability, read_voxel_map
from ..errors import InputError
from ..fileutil import sha256_file
from ..io import RangeTable, read_ions, read_ranges
from ..sdm import SDMSettings


@dataclass
class ScanData:
    path: Path
    voxels: VoxelMap
    xyz: np.ndarray
    species: np.ndarray        # species index per ion (-1 unranged)
    ranges: RangeTable
    input_path: Path
    range_path: Path

    @property
    def grid(self):
        return self.voxels.grid

    @property
    def settings(self) -> SDMSettings:
        """The SDM settings the scan (and its model) used."""
        return SDMSettings.from_dict(self.voxels.provenance["config"]["sdm"])

    @functools.cached_property
    def cubes(self) -> Cubes:
        return read_cubes(self.path)

    @functools.cached_property
    def ion_voxel(self) -> np.ndarray:
        """Voxel index [n, 3] of every ion (may lie outside the grid for none: the grid covers all)."""
        return self.grid.index(self.xyz)

    @functools.cached_property
    def stored_ion_probability(self) -> tuple | None:
        """The scan's per-ion probability and its attrs (method, model_sha256), if it made one."""
        return read_ion_probability(self.path) if self.path is not None else None

    @functools.cached_property
    def ion_resolved(self) -> np.ndarray | None:
        """Per ion: its voxel's lattice planes are resolved (None for a scan without the score)."""
        res = self.voxels.resolved if self.voxels is not None else None
        return None if res is None else res[tuple(self.ion_voxel.T)]

    def voxel_counts(self, mask=None) -> np.ndarray:
        """Ions (of `mask`, default all) per voxel of the scan's grid."""
        v = self.ion_voxel if mask is None else self.ion_voxel[mask]
        return np.bincount(np.ravel_multi_index(tuple(v.T), self.grid.shape),
                           minlength=int(np.prod(self.grid.shape))).reshape(self.grid.shape).astype(np.float64)

    def species_mask(self, names) -> np.ndarray:
        """Ions of any of the given species names (InputError naming the range file if absent)."""
        names = [names] if isinstance(names, str) else list(names)
        try:
            return np.isin(self.species, [self.ranges.index(n) for n in names])
        except InputError as exc:
            raise InputError(self.range_path, exc.problem) from None


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
