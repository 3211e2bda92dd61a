"""From the scan's voxel sums to labels: the paper's sum-above-threshold rule, per voxel and per ion."""
import json
from dataclasses import dataclass, field

import h5py
import numpy as np

from ..errors import InputError
from ..sdm import VoxelGrid


@dataclass
class VoxelMap:
    grid: VoxelGrid
    probability_sum: np.ndarray
    window_count: np.ndarray
    ion_count: np.ndarray
    full_window: int           # cubes covering an interior voxel (64 for 4 nm / 1 nm)
    provenance: dict = field(default_factory=dict)
    probability_sum_sd: np.ndarray | None = None   # ensemble scans: sd of the members' sums

    @property
    def covered(self) -> np.ndarray:
        """Voxels under at least one evaluated cube."""
        return self.window_count > 0

    def _to_full_window(self, a: np.ndarray) -> np.ndarray:
        """Per-voxel sums scaled to a full window (NaN where no cube was evaluated)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.window_count > 0, a * self.full_window / self.window_count, np.nan)

    def scaled_sum(self) -> np.ndarray:
        """Sums scaled to a full window, so edge voxels covered by fewer evaluated cubes compare
        with the same threshold (NaN where no cube was evaluated)."""
        return self._to_full_window(self.probability_sum)

    def uncertain(self, threshold: float, sigmas: float) -> np.ndarray | None:
        """Voxels whose members disagree about the side of the threshold: |mean - threshold| <
        sigmas x sd, both scaled to a full window (None without an ensemble)."""
        if self.probability_sum_sd is None:
            return None
        with np.errstate(invalid="ignore"):   # NaN (uncovered) compares False
            return self.covered & (np.abs(self.scaled_sum() - threshold)
                                   < sigmas * self._to_full_window(self.probability_sum_sd))

    def mask(self, threshold: float) -> np.ndarray:
        s = self.scaled_sum()
        return np.nan_to_num(s, nan=-1.0) > threshold


def read_voxel_map(path) -> VoxelMap:
    try:
        f = h5py.File(path, "r")
    except (FileNotFoundError, OSError):
        raise InputError(path, "not found or not an HDF5 file") from None
    with f:
        if "voxels/probability_sum" not in f:
            raise InputError(path, "not a scan file (no /voxels/probability_sum)")
        try:
            g = f["voxels"]
            ps = g["probability_sum"]
            grid = VoxelGrid(tuple(float(v) for v in ps.attrs["origin_nm"]), float(ps.attrs["voxel_nm"]),
                             tuple(int(n) for n in ps.shape))
            prov = json.loads(f["provenance"].attrs["json"])
            sdm = prov["config"]["sdm"]
            m = int(round(sdm["cube_nm"] / sdm["voxel_nm"]))
            sd = g["probability_sum_sd"][:] if "probability_sum_sd" in g else None
            return VoxelMap(grid, ps[:], g["window_count"][:], g["ion_count"][:], m ** 3, prov, sd)
        except (KeyError, ValueError, TypeError) as exc:   # a damaged or foreign file
            raise InputError(path, f"scan file is incomplete or damaged ({exc})") from None


def read_cubes(path) -> tuple[np.ndarray, np.ndarray]:
    """Lower corners (nm) and L1_2 probabilities of the evaluated cubes of a scan file."""
    with h5py.File(path, "r") as f:
        return f["cubes/origin_nm"][:].astype(np.float64), f["cubes/probability"][:].astype(np.float64)


def voxel_values(xyz, grid: VoxelGrid, volume: np.ndarray) -> np.ndarray:
    """The value of each ion's voxel (0 outside the grid)."""
    v = grid.index(np.asarray(xyz, np.float64))
    ok = np.all((v >= 0) & (v < np.asarray(grid.shape)), axis=1)
    out = np.zeros(len(v), volume.dtype)
    out[ok] = volume[tuple(v[ok].T)]
    return out


def ion_labels(xyz, grid: VoxelGrid, voxel_mask: np.ndarray) -> np.ndarray:
    """The label of each ion's voxel (False outside the grid)."""
    return voxel_values(xyz, grid, np.asarray(voxel_mask, bool))
