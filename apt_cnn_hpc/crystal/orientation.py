"""Rotations from the crystal frame to the reconstruction frame (z = analysis direction)."""
import numpy as np

from ..errors import InputError


def axis_rotation(axis, deg: float) -> np.ndarray:
    """Rotation matrix about a unit `axis` by `deg` (Rodrigues)."""
    u = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -u[2], u[1]], [u[2], 0, -u[0]], [-u[1], u[0], 0]])
    t = np.radians(deg)
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * (k @ k)


def orientation_matrix(pole=(0, 1, 1), x_direction=(1, 0, 0), azimuth_deg: float = 0.0,
                       tilt_deg: float = 0.0, tilt_azimuth_deg: float = 0.0) -> np.ndarray:
    """R with lab = R @ crystal: pole [uvw] along z, `x_direction` (made perpendicular) along x.

    `azimuth_deg` turns the crystal about z (the unknown in-plane orientation of a real tip).
    `tilt_deg` then tips the pole away from z towards the lab direction at `tilt_azimuth_deg`
    in the xy plane (0: towards +x, i.e. a turn about y, which rotates the zx-SDM in its plane:
    the paper's +-1 degree augmentation, done on the atoms so the map needs no interpolation;
    a real pole a few degrees off the analysis axis in any azimuth).
    """
    z = np.asarray(pole, dtype=float)
    if z.shape != (3,) or not np.any(z):
        raise InputError(None, f"pole {pole} must be three indices, not all zero")
    z = z / np.linalg.norm(z)
    x = np.asarray(x_direction, dtype=float)
    x = x - np.dot(x, z) * z
    if np.linalg.norm(x) < 1e-8:  # x_direction parallel to the pole: take any perpendicular
        x = np.cross(z, [1.0, 0, 0] if abs(z[0]) < 0.9 else [0, 1.0, 0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    base = np.vstack([x, y, z])
    rz = axis_rotation((0, 0, 1), azimuth_deg)
    a = np.radians(tilt_azimuth_deg)
    tilt = axis_rotation((-np.sin(a), np.cos(a), 0.0), tilt_deg)
    return tilt @ rz @ base
