"""Rotations from the crystal frame to the reconstruction frame (z = analysis direction)."""
import numpy as np

from ..errors import InputError


def orientation_matrix(pole=(0, 1, 1), x_direction=(1, 0, 0), azimuth_deg: float = 0.0,
                       tilt_deg: float = 0.0) -> np.ndarray:
    """R with lab = R @ crystal: pole [uvw] along z, `x_direction` (made perpendicular) along x.

    `azimuth_deg` turns the crystal about z (the unknown in-plane orientation of a real tip);
    `tilt_deg` turns it about y, i.e. rotates the zx-SDM in its plane by that angle (the paper's
    +-1 degree augmentation, done on the atoms so the map needs no interpolation).
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
    c, s = np.cos(np.radians(azimuth_deg)), np.sin(np.radians(azimuth_deg))
    rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    c, s = np.cos(np.radians(tilt_deg)), np.sin(np.radians(tilt_deg))
    ry = np.array([[c, 0, s], [0, 1.0, 0], [-s, 0, c]])
    return ry @ rz @ base
