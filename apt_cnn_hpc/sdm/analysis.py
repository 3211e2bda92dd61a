"""Periodicities of a z-SDM: plane spacing and superlattice strength, as numbers for tests and
reports (the eye reads Figure 6b/c; this reads the same thing)."""
import numpy as np


def _detrended(z_counts, z_edges):
    c = 0.5 * (z_edges[1:] + z_edges[:-1])
    z = np.asarray(z_counts, dtype=float)
    # the sphere of partners gives a smooth dome; remove it so only plane modulations remain
    z = z - np.polyval(np.polyfit(c, z, 6), c)
    return c, z * np.hanning(len(z))


def relative_amplitude(z_counts, z_edges, period_nm: float) -> float:
    """Fourier amplitude at `period_nm`, relative to the total pair count."""
    c, z = _detrended(z_counts, z_edges)
    total = max(float(np.sum(z_counts)), 1.0)
    return float(np.abs(np.sum(z * np.exp(-2j * np.pi * c / period_nm)))) / total


def dominant_period(z_counts, z_edges, min_nm: float = 0.08, max_nm: float = 0.6) -> float:
    """Period (nm) of the strongest modulation between min_nm and max_nm (fine frequency scan)."""
    c, z = _detrended(z_counts, z_edges)
    f = np.linspace(1 / max_nm, 1 / min_nm, 4000)
    amp = np.abs(np.exp(-2j * np.pi * np.outer(f, c)) @ z)
    return float(1 / f[np.argmax(amp)])
