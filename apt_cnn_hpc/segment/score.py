"""Scoring against ground truth: per-ion precision/recall/F1 of "inside L1_2", and the oracle."""
import h5py
import numpy as np

from ..errors import InputError
from ..sdm import VoxelGrid
from .voxels import ion_labels, voxel_values


def prf(pred, truth) -> dict:
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    tp = float(np.sum(pred & truth))
    p = tp / max(pred.sum(), 1)
    r = tp / max(truth.sum(), 1)
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def oracle_labels(xyz, truth, grid: VoxelGrid) -> np.ndarray:
    """Every voxel labelled by the majority truth of its own ions: the best any map of these
    voxels can do under the specimen's position noise."""
    v = grid.index(np.asarray(xyz, np.float64))
    ok = np.all((v >= 0) & (v < np.asarray(grid.shape)), axis=1)
    inside = np.zeros(grid.shape)
    total = np.zeros(grid.shape)
    np.add.at(total, tuple(v[ok].T), 1)
    np.add.at(inside, tuple(v[ok].T), np.asarray(truth, float)[ok])
    return ion_labels(xyz, grid, inside > total / 2)


RADIUS_BINS_NM = (0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 100.0)


def truth_table(truth_path, n_ions: int) -> dict:
    """Per-ion precipitate id and the precipitates' centres and radii from `apt-cnn specimen`'s
    ground-truth file (a file of this schema from any other generator works the same)."""
    try:
        f = h5py.File(truth_path, "r")
    except (FileNotFoundError, OSError):
        raise InputError(truth_path, "not found or not an HDF5 file") from None
    with f:
        for k in ("ions/precipitate_id", "precipitates/centre_nm", "precipitates/radius_nm"):
            if k not in f:
                raise InputError(truth_path, f"not a ground-truth file (no /{k})")
        pid = f["ions/precipitate_id"][:].astype(np.int64)
        centre = f["precipitates/centre_nm"][:].reshape(-1, 3)
        radius = f["precipitates/radius_nm"][:]
    if len(pid) != n_ions:
        raise InputError(truth_path, f"holds {len(pid)} ions but the scan's reconstruction has {n_ions}")
    if len(radius) != len(centre) or (len(pid) and pid.max() > len(radius)):
        raise InputError(truth_path, "precipitate ids and the precipitate table disagree")
    return {"id": pid, "centre_nm": centre, "radius_nm": radius}


def match_precipitates(truth: dict, comp_of_ion: np.ndarray, comp_radius: np.ndarray, comp_edge: np.ndarray,
                       lo: np.ndarray, hi: np.ndarray, detect_fraction: float = 0.5,
                       purity: float = 0.8) -> dict:
    """Detection per truth precipitate and radius error on one-to-one pairs away from the edge.

    A precipitate is detected when >= detect_fraction of its ions are labelled (by any component,
    so merged neighbours count) or when a component has >= detect_fraction of its own ions inside
    it (a small precipitate found smaller than it is). A pair is one-to-one when the component's
    precipitate ions come >= `purity` from one truth precipitate; radius errors use such pairs with
    the component not at the data's edge. Only precipitates wholly inside the data [lo, hi] count
    (a cut one is a smaller, unknown shape); those cut by the edge are counted apart."""
    pid, radius, centre = truth["id"], truth["radius_nm"], truth["centre_nm"]
    n_t = len(radius)
    n_c = len(comp_radius)
    both = (pid > 0) & (comp_of_ion > 0)
    overlap = np.zeros((n_t + 1, n_c + 1), np.int64)
    np.add.at(overlap, (pid[both], comp_of_ion[both]), 1)
    n_ions_t = np.bincount(pid, minlength=n_t + 1)
    labelled_t = np.bincount(pid[comp_of_ion > 0], minlength=n_t + 1)
    n_ions_c = np.bincount(comp_of_ion, minlength=n_c + 1)
    points_at = overlap >= detect_fraction * np.maximum(n_ions_c, 1)[None, :]
    rows, cut = [], 0
    for k in range(1, n_t + 1):
        if n_ions_t[k] == 0:
            continue
        if not (np.all(centre[k - 1] - radius[k - 1] >= lo) and np.all(centre[k - 1] + radius[k - 1] <= hi)):
            cut += 1
            continue
        j = int(np.argmax(overlap[k])) if overlap[k].any() else 0
        pure = j > 0 and overlap[k, j] >= purity * overlap[:, j].sum()
        rows.append({"radius_nm": float(radius[k - 1]),
                     "detected": bool(labelled_t[k] >= detect_fraction * n_ions_t[k] or points_at[k, 1:].any()),
                     "radius_error_nm": float(comp_radius[j - 1] - radius[k - 1])
                     if pure and not comp_edge[j - 1] else None})
    r = np.array([row["radius_nm"] for row in rows])
    det = np.array([row["detected"] for row in rows], bool)
    per_bin = []
    for a, b in zip(RADIUS_BINS_NM[:-1], RADIUS_BINS_NM[1:]):
        sel = (r >= a) & (r < b)
        if sel.any():
            per_bin.append({"radius_nm": [a, b], "precipitates": int(sel.sum()), "detected": int(det[sel].sum()),
                            "rate": float(det[sel].mean())})
    pairs = [(row["radius_nm"], row["radius_error_nm"]) for row in rows if row["radius_error_nm"] is not None]
    err = np.array([e for _, e in pairs])
    rt = np.array([t for t, _ in pairs])
    return {
        "precipitates_inside": len(rows),
        "precipitates_cut_by_edge": cut,
        "detected": int(det.sum()),
        "detection_rate_r_ge_1.5nm": float(det[r >= 1.5].mean()) if np.any(r >= 1.5) else None,
        "detection_per_radius_bin": per_bin,
        "smallest_radius_detected_nm": float(r[det].min()) if det.any() else None,
        "radius_pairs": len(pairs),
        "mean_radius_truth_nm": float(rt.mean()) if len(rt) else None,
        "mean_radius_found_nm": float((rt + err).mean()) if len(rt) else None,
        "mean_radius_error_nm": float(err.mean()) if len(err) else None,
        "sd_radius_error_nm": float(err.std(ddof=1)) if len(err) > 1 else None,
    }


def score_scan(scan_path, truth_path, input_override=None, range_override=None) -> dict:
    """Per method in the segmented scan: per-ion P/R/F1 of "inside L1_2" with the oracle's F1
    beside it, detection per radius bin and radius error against the ground truth."""
    from .inputs import load_scan_data
    data = load_scan_data(scan_path, input_override, range_override)
    truth = truth_table(truth_path, len(data.xyz))
    inside = truth["id"] > 0
    grid = data.voxels.grid
    oracle = prf(oracle_labels(data.xyz, inside, grid), inside)
    lo, hi = data.xyz.min(axis=0), data.xyz.max(axis=0)
    out = {"oracle": oracle, "ions": len(inside), "ions_inside_precipitates": int(inside.sum()), "methods": {}}
    with h5py.File(data.path, "r") as f:
        if "precipitates" not in f:
            raise InputError(data.path, "not segmented yet: run `apt-cnn segment` first")
        for method, g in f["precipitates"].items():
            comp_of_ion = voxel_values(data.xyz, grid, g["voxel_label"][:].astype(np.int64))
            m = prf(comp_of_ion > 0, inside)
            m["oracle_f1"] = oracle["f1"]
            m["f1_over_oracle"] = m["f1"] / oracle["f1"] if oracle["f1"] else None
            m.update(match_precipitates(truth, comp_of_ion, g["radius_nm"][:], g["touches_edge"][:], lo, hi))
            out["methods"][method] = m
    return out
