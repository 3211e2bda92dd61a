"""`apt-cnn score` and the measures behind it (also the accuracy benchmark's): scoring against ground truth, per ion: the same measures for every method, beside the oracle
(every 1 nm voxel labelled by the majority truth of its ions) and the ceiling (every ion labelled
by whether its reconstructed position lies inside a true precipitate)."""
import json
import logging

import numpy as np

from ..model.calibration import expected_calibration_error
from ..sdm import VoxelGrid
from .voxels import ion_labels

log = logging.getLogger(__name__)
RADIUS_BINS_NM = (0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 100.0)
RESAMPLES = 1000           # bootstrap resamples of the 95 % intervals (seeded: the same on every run)


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


def ceiling_labels(xyz, truth) -> np.ndarray:
    """Ions whose reconstructed position lies inside a true precipitate (at its reconstructed
    centre): what an observer who knows the precipitates exactly reaches; blur moves boundary
    ions across the surface regardless."""
    from scipy.spatial import cKDTree
    out = np.zeros(len(xyz), bool)
    if len(truth.radius_nm) == 0:
        return out
    tree = cKDTree(xyz)
    for centre, r in zip(truth.reconstructed_centres(), truth.radius_nm):
        out[tree.query_ball_point(centre, r)] = True
    return out


def precipitate_cells(xyz, truth) -> np.ndarray:
    """Every ion's nearest true precipitate (by distance to its surface, at its reconstructed
    centre), from 0: the units the bootstrap resamples. A method's errors correlate within a
    precipitate's neighbourhood (one boundary, one contrast), not between single ions; all ions
    form one cell where the truth has no precipitate."""
    from scipy.spatial import cKDTree
    if len(truth.radius_nm) == 0:
        return np.zeros(len(xyz), np.int64)
    centres = truth.reconstructed_centres()
    k = min(len(centres), 8)       # the nearest surface is among the nearest few centres
    d, j = cKDTree(centres).query(np.asarray(xyz, np.float64), k=k)
    d, j = d.reshape(len(xyz), k), j.reshape(len(xyz), k)
    gap = d - np.asarray(truth.radius_nm)[j]
    return j[np.arange(len(xyz)), np.argmin(gap, axis=1)].astype(np.int64)


def _interval(values) -> list | None:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    return [float(np.quantile(v, 0.025)), float(np.quantile(v, 0.975))] if len(v) else None


def resampled_intervals(pred, oracle, inside, cells, resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """95 % percentile intervals of F1 / oracle F1 and of the volume bias over specimens made of
    the same precipitate cells drawn with replacement (a cluster bootstrap): how far one
    specimen's figure can move by which precipitates it happens to hold. Paired: the method and
    the oracle are scored on the same draw. Few cells give intervals too narrow (two cells can
    only mix two figures); the number of cells is returned with them."""
    cells = np.asarray(cells, np.int64)
    n = int(cells.max()) + 1 if len(cells) else 0
    if n < 2 or not inside.any():
        return {"resampled_cells": n, "f1_over_oracle_ci95": None, "volume_bias_ci95": None}
    count = lambda m: np.bincount(cells[m], minlength=n)  # noqa: E731
    C = np.stack([count(pred & inside), count(pred & ~inside), count(~pred & inside),
                  count(oracle & inside), count(oracle & ~inside), count(~oracle & inside), count(inside)], 1)
    W = np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), size=resamples)
    tp, fp, fn, otp, ofp, ofn, t = (W @ C).T.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (2 * tp / (2 * tp + fp + fn)) / (2 * otp / (2 * otp + ofp + ofn))
        volume = (tp + fp) / t - 1
    return {"resampled_cells": n, "f1_over_oracle_ci95": _interval(ratio), "volume_bias_ci95": _interval(volume)}


def radius_bias_interval(rt, rf, resamples: int = RESAMPLES, seed: int = 0) -> list | None:
    """95 % percentile interval of mean(found) / mean(true) - 1 over one-to-one pairs drawn with
    replacement (None below 3 pairs)."""
    if len(rt) < 3:
        return None
    idx = np.random.default_rng(seed).integers(0, len(rt), (resamples, len(rt)))
    return _interval(rf[idx].mean(1) / rt[idx].mean(1) - 1)


def match_precipitates(truth, comp_of_ion: np.ndarray, comp_radius: np.ndarray, comp_edge: np.ndarray,
                       lo: np.ndarray, hi: np.ndarray, detect_fraction: float = 0.5,
                       purity: float = 0.8) -> dict:
    """Detection per truth precipitate, how many are found alone, and radius errors on one-to-one
    pairs away from the edge.

    A precipitate is detected when >= detect_fraction of its ions are labelled (by any component,
    so merged neighbours count) or when a component has >= detect_fraction of its own ions inside
    it (a small precipitate found smaller than it is). It is found alone when its best component's
    precipitate ions come >= `purity` from it (one-to-one); radius errors use such pairs with the
    component not at the data's edge. Only precipitates wholly inside the data [lo, hi] count (a
    cut one is a smaller, unknown shape); those cut by the edge are counted apart."""
    pid, radius, centre = truth.precipitate_id, truth.radius_nm, truth.reconstructed_centres()
    n_t, n_c = len(radius), len(comp_radius)
    comp_of_ion = np.maximum(comp_of_ion, 0)
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
        detected = bool(labelled_t[k] >= detect_fraction * n_ions_t[k] or points_at[k, 1:].any())
        alone = detected and j > 0 and overlap[k, j] >= purity * overlap[:, j].sum()
        rows.append({"radius_nm": float(radius[k - 1]), "detected": detected, "alone": bool(alone),
                     "found_radius_nm": float(comp_radius[j - 1]) if alone and not comp_edge[j - 1] else None})
    r = np.array([row["radius_nm"] for row in rows])
    det = np.array([row["detected"] for row in rows], bool)
    alone = np.array([row["alone"] for row in rows], bool)
    per_bin = []
    for a, b in zip(RADIUS_BINS_NM[:-1], RADIUS_BINS_NM[1:]):
        sel = (r >= a) & (r < b)
        if sel.any():
            per_bin.append({"radius_nm": [a, b], "precipitates": int(sel.sum()), "detected": int(det[sel].sum()),
                            "rate": float(det[sel].mean())})
    pairs = [(row["radius_nm"], row["found_radius_nm"]) for row in rows if row["found_radius_nm"] is not None]
    rt = np.array([t for t, _ in pairs])
    rf = np.array([f for _, f in pairs])
    rate = lambda sel: float(det[sel].mean()) if sel.any() else None  # noqa: E731
    return {
        "precipitates_inside": len(rows),
        "precipitates_cut_by_edge": cut,
        "detected": int(det.sum()),
        "detection_rate_r_ge_1.5nm": rate(r >= 1.5) if len(r) else None,
        "detection_rate_r_1.0_1.5nm": rate((r >= 1.0) & (r < 1.5)) if len(r) else None,
        "detection_per_radius_bin": per_bin,
        "found_alone_rate": float(alone[det].mean()) if det.any() else None,
        "smallest_radius_detected_nm": float(r[det].min()) if det.any() else None,
        "radius_pairs": len(pairs),
        "mean_radius_truth_nm": float(rt.mean()) if len(rt) else None,
        "mean_radius_found_nm": float(rf.mean()) if len(rf) else None,
        "mean_radius_error_nm": float((rf - rt).mean()) if len(rt) else None,
        "radius_bias": float(rf.mean() / rt.mean() - 1) if len(rt) else None,
        "radius_bias_ci95": radius_bias_interval(rt, rf),
        "sd_radius_error_nm": float((rf - rt).std(ddof=1)) if len(rt) > 1 else None,
    }


def score_method(ids: np.ndarray, table: dict, truth, reference: dict, xyz, probability=None) -> dict:
    """Every measure of one method's per-ion result against the truth. `reference`: the oracle
    and ceiling labels and the data's bounds (from `reference_labels`)."""
    inside = truth.inside
    l12 = ids > 0
    m = prf(l12, inside)
    for name in ("oracle", "ceiling"):
        f = reference[name]["f1"]
        m[f"{name}_f1"] = f
        m[f"f1_over_{name}"] = m["f1"] / f if f else None
    m["volume_bias"] = float(l12.sum() / inside.sum() - 1) if inside.any() else None
    m.update(resampled_intervals(l12, reference["oracle_labels"], inside, reference["cells"]))
    m["false_positive_fraction"] = float(np.mean(l12[~inside])) if (~inside).any() else None
    m["ions_labelled_fraction"] = float(np.mean(l12))
    m["undetermined_fraction"] = float(np.mean(ids < 0))
    if probability is not None:
        m["ion_ece"], _ = expected_calibration_error(probability, inside)
    m.update(match_precipitates(truth, ids, table["radius_nm"], table["touches_edge"], reference["lo"],
                                reference["hi"]))
    return m


def reference_labels(xyz, truth, grid: VoxelGrid) -> dict:
    """The oracle's and the ceiling's scores and labels, the precipitate cells of the intervals,
    and the data's bounds."""
    oracle = oracle_labels(xyz, truth.inside, grid)
    ceiling = ceiling_labels(xyz, truth)
    return {"oracle": prf(oracle, truth.inside), "ceiling": prf(ceiling, truth.inside), "oracle_labels": oracle,
            "cells": precipitate_cells(xyz, truth), "lo": xyz.min(axis=0), "hi": xyz.max(axis=0)}


def score_scan(scan_path, truth_path, input_override=None, range_override=None) -> dict:
    """Per method in the segmented scan: every measure of `score_method` against the truth."""
    from ..contracts.segmentation import read_segmentation
    from ..contracts.truth import read_truth
    from .inputs import load_scan_data
    data = load_scan_data(scan_path, input_override, range_override)
    seg = read_segmentation(data.path)
    truth = read_truth(truth_path, len(data.xyz))
    ref = reference_labels(data.xyz, truth, data.grid)
    out = {"oracle": ref["oracle"], "ceiling": ref["ceiling"], "ions": len(data.xyz),
           "ions_inside_precipitates": int(truth.inside.sum()), "default": seg.default, "methods": {}}
    for name, rec in seg.methods.items():
        out["methods"][name] = score_method(rec.ion_precipitate_id, rec.table, truth, ref, data.xyz,
                                            rec.ion_probability)
    return out


def run(args):
    from ..fileutil import atomic_output
    result = score_scan(args.scan, args.truth, args.input, args.range)
    text = json.dumps(result, indent=1)
    if args.out:
        with atomic_output(args.out, args.overwrite) as tmp:
            with open(tmp, "w") as fh:
                fh.write(text)
    print(text)
    o, c = result["oracle"]["f1"], result["ceiling"]["f1"]
    for name, m in result["methods"].items():
        log.info("score: %-16s F1 %.3f (oracle %.3f, ratio %.2f; ceiling %.3f), P %.3f, R %.3f, volume %+.0f %%, "
                 "detected %d/%d", name, m["f1"], o, m["f1_over_oracle"] or 0, c, m["precision"], m["recall"],
                 100 * (m["volume_bias"] or 0), m["detected"], m["precipitates_inside"])
