"""Size distribution: equivalent-sphere radii of a method's precipitates (the table's `radius_nm`),
those cut by the edge of the data counted apart, since their radii are only lower bounds; the mean
and sd are of the others."""
import numpy as np

BIN_NM = 0.25


def at_edge(table: dict, xyz: np.ndarray) -> np.ndarray:
    """The table's `touches_edge` flag, else: the sphere of the equivalent radius about the
    centroid reaches outside the bounding box of the data."""
    if "touches_edge" in table:
        return np.asarray(table["touches_edge"], bool)
    c = np.asarray(table["centroid_nm"], float).reshape(-1, 3)
    r = np.asarray(table["radius_nm"], float)[:, None]
    return ((c - r < xyz.min(axis=0)) | (c + r > xyz.max(axis=0))).any(axis=1)


def size_distribution(table: dict, xyz: np.ndarray, bin_nm: float = BIN_NM) -> dict:
    r = np.asarray(table["radius_nm"], float)
    edge = at_edge(table, xyz)
    top = max(bin_nm, float(np.ceil(r.max(initial=0) / bin_nm)) * bin_nm)
    edges = np.arange(0.0, top + bin_nm / 2, bin_nm)
    inner = r[~edge]
    return {"size_edges_nm": edges,
            "size_histogram": np.histogram(inner, edges)[0].astype(np.int64),
            "size_histogram_at_edge": np.histogram(r[edge], edges)[0].astype(np.int64),
            "count": int(len(inner)), "count_at_edge": int(edge.sum()),
            "radius_mean_nm": float(inner.mean()) if len(inner) else float("nan"),
            "radius_sd_nm": float(inner.std(ddof=1)) if len(inner) > 1 else float("nan"),
            "radius_mean_all_nm": float(r.mean()) if len(r) else float("nan")}
