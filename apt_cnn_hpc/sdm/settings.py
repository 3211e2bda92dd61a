"""SDM settings in one place (values from configs/sdm.yaml)."""
from dataclasses import asdict, dataclass

import numpy as np

from ..config import load_config, positive
from ..errors import InputError


@dataclass(frozen=True)
class SDMSettings:
    neighbour_radius_nm: float = 1.5
    map_half_width_nm: float = 0.75
    map_bins: int = 150
    z_sdm_bin_nm: float = 0.005
    pair: tuple = ("Al", "Al")
    cube_nm: float = 4.0
    voxel_nm: float = 1.0

    @property
    def cube_voxels(self) -> int:
        """Cube side in voxels (the box-sum width)."""
        return int(round(self.cube_nm / self.voxel_nm))

    @property
    def z_bins(self) -> int:
        return int(round(2 * self.neighbour_radius_nm / self.z_sdm_bin_nm))

    def zx_edges(self) -> np.ndarray:
        w = self.map_half_width_nm
        return np.linspace(-w, w, self.map_bins + 1)

    def z_edges(self) -> np.ndarray:
        r = self.neighbour_radius_nm
        return np.linspace(-r, r, self.z_bins + 1)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["pair"] = list(self.pair)
        return d

    @classmethod
    def from_dict(cls, d: dict, where="sdm config") -> "SDMSettings":
        try:
            s = cls(neighbour_radius_nm=positive(d, "neighbour_radius_nm", where),
                    map_half_width_nm=positive(d, "map_half_width_nm", where),
                    map_bins=int(positive(d, "map_bins", where)),
                    z_sdm_bin_nm=positive(d, "z_sdm_bin_nm", where),
                    pair=tuple(str(p) for p in d["pair"]),
                    cube_nm=positive(d, "cube_nm", where),
                    voxel_nm=positive(d, "voxel_nm", where))
        except KeyError as exc:
            raise InputError(where, f"missing setting {exc}") from None
        if len(s.pair) != 2:
            raise InputError(where, f"pair must name two species, got {list(s.pair)}")
        if s.map_half_width_nm > s.neighbour_radius_nm:
            raise InputError(where, "map_half_width_nm must not exceed neighbour_radius_nm")
        if abs(s.cube_nm / s.voxel_nm - s.cube_voxels) > 1e-9 or s.cube_voxels < 1:
            raise InputError(where, f"cube_nm ({s.cube_nm}) must be a whole multiple of voxel_nm "
                                    f"({s.voxel_nm}); the stride cannot exceed the cube")
        return s

    @classmethod
    def load(cls, user_path=None) -> "SDMSettings":
        cfg = load_config("sdm", user_path)
        return cls.from_dict(cfg, user_path or "configs/sdm.yaml")


def parse_pair(text: str) -> tuple[str, str]:
    """'Al-Li' -> ('Al', 'Li'): reference and partner species."""
    pair = tuple(text.split("-"))
    if len(pair) != 2 or not all(pair):
        raise InputError(None, f"a species pair must look like Al-Li, got '{text}'")
    return pair
