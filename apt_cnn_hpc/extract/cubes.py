"""Cut labelled maps at given cubes of any reconstruction, with the +-1 degree augmentation.

Written as an extract file (contracts/dictionary.py), usable with `train --extra`; its params are
x0_nm, y0_nm, z0_nm (cube lower corner), tilt_deg, n_reference.
"""
import numpy as np

from ..errors import InputError
from ..sdm import PartnerIndex, SDMSettings, species_mask
from ..sdm.normalise import to_uint8


def read_cube_list(path) -> np.ndarray:
    """Cube lower corners (nm) from a CSV of x0, y0, z0 (optional header line)."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = [l.strip() for l in fh if l.strip() and not l.startswith("#")]
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    rows = []
    for k, line in enumerate(lines):
        fields = line.replace(";", ",").replace("\t", ",").split(",")
        try:
            vals = [float(v) for v in fields[:3]]
        except ValueError:
            if k == 0:
                continue  # header
            raise InputError(path, f"line {k + 1}: expected three numbers x0,y0,z0, got '{line}'") from None
        if len(vals) < 3 or not np.all(np.isfinite(vals)):
            raise InputError(path, f"line {k + 1}: expected three finite numbers x0,y0,z0")
        rows.append(vals)
    if not rows:
        raise InputError(path, "no cubes listed")
    return np.asarray(rows)


def _tilt_about_y(pos, centre, deg):
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    d = pos - centre
    out = d.copy()
    out[:, 0] = c * d[:, 0] + s * d[:, 2]
    out[:, 2] = -s * d[:, 0] + c * d[:, 2]
    return out + centre


def extract_maps(xyz, labels, names, settings: SDMSettings, cubes: np.ndarray, augment: int,
                 max_tilt_deg: float = 1.0):
    """Maps [n_cubes * augment] with tilts spread evenly over +-max_tilt_deg (0 for augment 1),
    and their params (name -> [n] values)."""
    is_ref = species_mask(labels, names, settings.pair[0])
    is_part = species_mask(labels, names, settings.pair[1])
    ids = np.arange(len(xyz))
    tilts = np.linspace(-max_tilt_deg, max_tilt_deg, augment) if augment > 1 else np.zeros(1)
    maps, params = [], []
    r = settings.neighbour_radius_nm
    for lo in cubes:
        hi = lo + settings.cube_nm
        ref = np.flatnonzero(is_ref & np.all((xyz >= lo) & (xyz < hi), axis=1))
        if len(ref) == 0:
            raise InputError(None, f"cube at {lo.tolist()} nm holds no {settings.pair[0]} ions")
        near = np.flatnonzero(is_part & np.all((xyz >= lo - 2 * r) & (xyz < hi + 2 * r), axis=1))
        centre = (lo + hi) / 2
        for t in tilts:
            p_pos = _tilt_about_y(xyz[near].astype(np.float64), centre, t)
            r_pos = _tilt_about_y(xyz[ref].astype(np.float64), centre, t)
            index = PartnerIndex(p_pos, ids[near], settings)
            zx, _ = index.histograms(r_pos, ids[ref], np.zeros(len(ref), np.int64), 1)
            maps.append(to_uint8(zx[0]))
            params.append((*lo, t, len(ref)))
    columns = np.asarray(params, float).reshape(-1, 5).T
    return np.asarray(maps), dict(zip(("x0_nm", "y0_nm", "z0_nm", "tilt_deg", "n_reference"), columns))
