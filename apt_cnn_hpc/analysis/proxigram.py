"""Proximity histogram: composition against signed distance to the precipitate/matrix interface.

The interface is where the method's labels change, found per ion: each ranged ion's distance to
the nearest ranged ion of the other phase (negative in the matrix, positive inside a precipitate).
It needs no isosurface, so per-ion and per-voxel methods are measured the same way. The ions of
all precipitates are pooled by distance ("averaged over precipitates", each weighted by its ions
at that distance), which keeps the binomial counting error of each bin exact; undetermined ions
(id -1) and unranged ions neither count nor place the interface. With a sharp interface the first
ion on either side lies about one ion spacing from it, so bins nearest 0 hold few ions."""
import numpy as np
from scipy.spatial import cKDTree

from .compositions import at_pct

EDGES_NM = np.round(np.arange(-3.0, 3.0 + 1e-9, 0.2), 10)   # 30 bins of 0.2 nm


def signed_distance(xyz: np.ndarray, inside: np.ndarray, outside: np.ndarray, reach: float) -> np.ndarray:
    """Per ion: + distance to the nearest `outside` ion for `inside` ions, - distance to the nearest
    `inside` ion for `outside` ions; NaN for other ions, beyond `reach`, or with one phase empty."""
    d = np.full(len(xyz), np.nan)
    for this, other, sign in ((inside, outside, 1.0), (outside, inside, -1.0)):
        if this.any() and other.any():
            dist, _ = cKDTree(xyz[other]).query(xyz[this], distance_upper_bound=reach)
            dist[~np.isfinite(dist)] = np.nan
            d[this] = sign * dist
    return d


def proxigram(xyz: np.ndarray, species: np.ndarray, ids: np.ndarray, atoms_per_species: np.ndarray,
              edges: np.ndarray = EDGES_NM) -> dict:
    """Composition (at.%, counting error) and ranged ions per distance bin (`edges`, nm)."""
    ranged = species >= 0
    d = signed_distance(xyz, ranged & (ids > 0), ranged & (ids == 0), float(np.max(np.abs(edges))))
    use = np.isfinite(d) & (d >= edges[0]) & (d < edges[-1])
    b = np.searchsorted(edges, d[use], side="right") - 1
    counts = np.zeros((len(edges) - 1, len(atoms_per_species)))
    np.add.at(counts, (b, species[use].astype(np.int64)), 1)
    pct, err, _ = at_pct(counts @ atoms_per_species)
    return {"proxigram_distance_nm": 0.5 * (edges[1:] + edges[:-1]), "proxigram_edges_nm": np.asarray(edges, float),
            "proxigram_at_pct": pct, "proxigram_at_pct_error": err,
            "proxigram_ion_count": counts.sum(axis=1).astype(np.int64)}
