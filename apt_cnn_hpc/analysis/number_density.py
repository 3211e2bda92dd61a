"""Number density and volume fraction of the precipitate phase, each with its uncertainty.

Analysed volume: the convex hull of the reconstruction's ions, times the share of its ions not
undetermined (id -1, assuming the ion density is the same there). The hull because a
reconstruction (a truncated cone, or a box or cylinder cut from it) is convex, and the hull's
volume does not depend on how a grid happens to sit on the data's faces; 1 nm voxels holding ions
count each voxel a face cuts as whole (0 to +20 % on a 16 nm cube, as the grid falls on the faces)
and miss voxels that happen to be empty at low density. The occupied-voxel volume (grid from the
data's lower corner) is stored beside it as a cross-check: much smaller means a concave or
hollow reconstruction, where the hull is too large.

Number density: precipitates cut by the data's edge count one half (the usual correction for a
finite volume: on average about half of such a precipitate's centre lies outside), error from
Poisson counting, var = N_inside + N_edge / 4. Volume fraction: the share of the determined ranged
ions that lie in precipitates (both phases of the alloy have nearly the same atomic density; a
ratio of counts cancels the detection efficiency), error from a seeded bootstrap over the
precipitates (their number and sizes are the sampling that dominates)."""
import numpy as np
from scipy.spatial import ConvexHull, QhullError


def convex_hull_volume(xyz: np.ndarray) -> float:
    try:
        return float(ConvexHull(xyz).volume) if len(xyz) >= 4 else 0.0
    except (QhullError, ValueError):
        return 0.0        # flat or degenerate data has no volume


def occupied_voxel_volume(xyz: np.ndarray, voxel_nm: float = 1.0) -> float:
    if not len(xyz):
        return 0.0
    v = np.floor((xyz - xyz.min(axis=0)) / voxel_nm).astype(np.int64)
    dims = v.max(axis=0) + 1
    return float(len(np.unique(np.ravel_multi_index(tuple(v.T), tuple(dims))))) * voxel_nm ** 3


def number_density(count: int, count_at_edge: int, volume_nm3: float) -> dict:
    n = count + 0.5 * count_at_edge
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = n / volume_nm3 if volume_nm3 > 0 else float("nan")
        err = np.sqrt(count + 0.25 * count_at_edge) / volume_nm3 if volume_nm3 > 0 else float("nan")
    return {"number_density_per_nm3": float(rho), "number_density_per_nm3_error": float(err),
            "number_density_per_m3": float(rho) * 1e27, "number_density_per_m3_error": float(err) * 1e27}


def volume_fraction(ions_per_precipitate: np.ndarray, total_ions: int, resamples: int = 200,
                    seed: int = 0) -> dict:
    """Share of `total_ions` in the precipitates; bootstrap sd and 95 % interval over them."""
    n = np.asarray(ions_per_precipitate, float)
    total = max(int(total_ions), 1)
    rng = np.random.default_rng(seed)
    boot = n[rng.integers(0, len(n), (resamples, len(n)))].sum(axis=1) / total if len(n) else np.zeros(resamples)
    return {"volume_fraction": float(n.sum() / total),
            "volume_fraction_error": float(boot.std(ddof=1)) if resamples > 1 else float("nan"),
            "volume_fraction_ci95": np.percentile(boot, [2.5, 97.5]),
            "bootstrap_resamples": int(resamples), "bootstrap_seed": int(seed)}
