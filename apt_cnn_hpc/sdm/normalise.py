"""The one map normalisation used by the library, extract and the scan: counts -> uint8 image.

Min-max scaling keeps the band contrast whatever the number of ions in the cube (detection
efficiency and composition change the counts by factors of two or more).
"""
import numpy as np


def to_uint8(counts: np.ndarray) -> np.ndarray:
    """Scale each map (last two axes) to 0..255."""
    c = np.asarray(counts, dtype=np.float32)
    lo = c.min(axis=(-2, -1), keepdims=True)
    span = c.max(axis=(-2, -1), keepdims=True) - lo
    out = np.where(span > 0, (c - lo) * (255.0 / np.where(span > 0, span, 1)), 0)
    return np.rint(out).astype(np.uint8)
