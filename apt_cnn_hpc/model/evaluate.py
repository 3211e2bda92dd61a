"""Evaluation the paper could not do: cubes cut from synthetic specimens with known precipitates,
made by the scan's SDM code path, with ROC/AUC on clear cubes and the response to mixed cubes."""
import logging

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import rankdata  # noqa: E402

from ..config import load_config, merge  # noqa: E402
from .calibration import apply_calibration, expected_calibration_error, fit_platt, plot_reliability  # noqa: E402
from .cnn import logit  # noqa: E402
from ..crystal.specimen import make_specimen  # noqa: E402
from ..sdm.cubes import all_cube_maps  # noqa: E402

log = logging.getLogger(__name__)

# Held-out specimens: other seeds, noise, efficiency, azimuth and artefacts than the library's maps.
HELDOUT = (
    {"seed": 1001, "size_nm": [24, 24, 24], "azimuth_deg": 17.0,
     "detector": {"efficiency": 0.5, "sigma_xy_nm": 0.3, "sigma_z_nm": 0.025, "pole_tilt_deg": 0.8,
                  "pole_tilt_azimuth_deg": 40.0, "z_scale": 1.015}},
    {"seed": 1002, "size_nm": [24, 24, 24], "azimuth_deg": 63.0,
     "detector": {"efficiency": 0.7, "sigma_xy_nm": 0.45, "sigma_z_nm": 0.04, "background_fraction": 0.01,
                  "curvature_radius_nm": 2000.0}},
)
L12_MIN, FCC_MAX = 0.90, 0.01
RESPONSE_BINS = np.array([0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0001])


def auc(scores, labels) -> float:
    """Area under the ROC curve (Mann-Whitney U with ties averaged)."""
    labels = np.asarray(labels, bool)
    n1, n0 = labels.sum(), (~labels).sum()
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(scores)
    return float((r[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def roc_curve(scores, labels):
    order = np.argsort(-np.asarray(scores), kind="stable")
    lab = np.asarray(labels, bool)[order]
    tpr = np.concatenate([[0], np.cumsum(lab) / max(lab.sum(), 1)])
    fpr = np.concatenate([[0], np.cumsum(~lab) / max((~lab).sum(), 1)])
    return fpr, tpr


def kinds_of_rows(f) -> np.ndarray:
    """Kind of every dictionary row (fcc, l12, mixed), from the counts in its library config."""
    import json
    counts = json.loads(f.attrs.get("library_config", "{}")).get("counts", {})
    n = f["labels"].shape[0]
    kinds = np.full(n, "extra", dtype=object)
    edge = 0
    for k in ("fcc", "l12", "mixed"):
        c = int(counts.get(k, 0))
        kinds[edge:edge + c] = k
        edge += c
    return kinds


def decision_threshold(positive_weight: float) -> float:
    """The equal-cost decision threshold of a model trained with L1_2 maps weighted W times:
    a calibrated posterior of 0.5 becomes W / (W + 1) (0.5 for the paper's W = 1)."""
    return positive_weight / (positive_weight + 1.0)


def best_threshold(scores, labels) -> float:
    """The cut that classifies (scores, labels) best; among equally good cuts the one with the
    widest gap to its neighbouring scores in logit space (the largest margin)."""
    z = logit(scores)
    order = np.argsort(z, kind="stable")
    z, y = z[order], np.asarray(labels, bool)[order]
    # cut i puts the i lowest scores on the FCC side: correct = FCC below + L1_2 at or above
    correct = np.concatenate([[0], np.cumsum(~y)]) + np.concatenate([np.cumsum(y[::-1])[::-1], [0]])
    edges = np.concatenate([[z[0] - 1.0], z, [z[-1] + 1.0]])
    gap = edges[1:] - edges[:-1]
    best = np.flatnonzero(correct == correct.max())
    i = best[np.argmax(gap[best])]
    return float(1.0 / (1.0 + np.exp(-(edges[i] + edges[i + 1]) / 2)))


def validation_threshold(predictor, path) -> tuple:
    """(threshold, record): the operating threshold chosen on the pure FCC and L1_2 maps of a
    separate validation dictionary (another seed), never on the test split it is then used on.
    A model trained on mixed maps with weighted L1_2 loss has no natural threshold on pure maps."""
    from ..fileutil import sha256_file
    from ..contracts.dictionary import open_maps, read_rows
    f, _, _ = open_maps(path)
    with f:
        idx = np.flatnonzero(np.isin(kinds_of_rows(f), ("fcc", "l12")))
        maps, labels = read_rows(f, idx)
    p = predictor(maps)
    thr = best_threshold(p, labels == 1)
    acc = float(np.mean((p >= thr) == (labels == 1)))
    log.info("operating threshold %.6f from %d validation maps of %s (accuracy there %.4f)",
             thr, len(idx), path, acc)
    return thr, {"path": str(path), "sha256": sha256_file(path), "maps": int(len(idx)),
                 "accuracy": acc}


def operating_threshold(predictor, validation, positive_weight: float) -> tuple:
    """From a validation dictionary when there is one, else W / (W + 1)."""
    if validation:
        return validation_threshold(predictor, validation)
    return decision_threshold(positive_weight), None


def test_split_metrics(predictor, f, test_idx, threshold: float = 0.5) -> dict:
    """Accuracy on the test rows at `threshold`: on pure FCC and L1_2 maps (the paper's measure)
    and, apart, on mixed maps (labelled by their L1_2 share, ambiguous near the cut); the
    calibration error against the training targets (pure, mixed, all)."""
    from ..contracts.dictionary import read_rows
    idx = np.sort(test_idx)
    maps, labels = read_rows(f, idx)
    _, targets = read_rows(f, idx, targets=True)
    p = predictor(maps)
    ok = (p >= threshold) == (labels == 1)
    kinds = kinds_of_rows(f)[idx]
    pure = (kinds == "fcc") | (kinds == "l12")
    out = {"simulated_test_accuracy": float(ok[pure].mean()) if pure.any() else None,
           "simulated_test_maps": int(pure.sum()), "decision_threshold": threshold,
           "simulated_test_auc": auc(p[pure], labels[pure] == 1) if pure.any() else None}
    if (kinds == "mixed").any():
        out["simulated_test_accuracy_mixed"] = float(ok[kinds == "mixed"].mean())
        out["simulated_test_maps_mixed"] = int((kinds == "mixed").sum())
    for name, sel in (("", np.ones(len(idx), bool)), ("_pure", pure), ("_mixed", kinds == "mixed")):
        if sel.any():
            out[f"simulated_test_ece{name}"], rows = expected_calibration_error(p[sel], targets[sel])
            if not name:
                out["reliability_test"] = rows
    return out


def calibration_specimens(n_alloy: int = 10, n_matrix: int = 4, seed: int = 3000) -> list:
    """Specimens whose cubes calibrate a model: acquisition drawn over the default library's
    ranges; alloys with precipitates of every density and size, and pure matrix (most cubes of a
    real scan are); seeds 3001.. used nowhere else. Calibrating on the cubes a scan sees (not on
    library maps) matters: one Al-Al map cannot tell a small share of strongly ordered L1_2 from a
    larger share of weakly ordered L1_2, so the share a map implies depends on the precipitates'
    order and on how often each share occurs, which these specimens have as a scanned alloy does."""
    rng = np.random.default_rng(seed)
    u = lambda a, b: float(rng.uniform(a, b))  # noqa: E731
    out = []
    for k in range(n_alloy + n_matrix):
        alloy = k < n_alloy
        out.append({"seed": seed + 1 + k, "size_nm": [18, 18, 18] if alloy else [16, 16, 16],
                    "detector": {"efficiency": u(0.3, 0.85), "sigma_xy_nm": u(0.15, 0.6), "sigma_z_nm": u(0.01, 0.1),
                                 "pole_tilt_deg": u(0, 2.5), "pole_tilt_azimuth_deg": u(0, 360),
                                 "z_scale": u(0.97, 1.03), "background_fraction": u(0, 0.02)},
                    "precipitates": {"volume_fraction": u(0.03, 0.25) if alloy else 0.0,
                                     "radius_mean_nm": u(1.0, 3.0)}})
    return out


def heldout_cubes(settings, specimens=HELDOUT, min_reference: int = 300):
    """(uint8 maps, L1_2 share of each cube's reference atoms) over synthetic specimens (by
    default the held-out ones), made by the scan's SDM code path."""
    maps, frac = [], []
    base = load_config("specimen")
    for over in specimens:
        spec = make_specimen(merge(base, over))
        names = spec["species_names"]
        labels = np.where(spec["is_background"], -1, spec["species_true"]).astype(np.int16)
        inside = (spec["precipitate_id"] > 0).astype(float)
        cm = all_cube_maps(spec["xyz"], labels, names, settings, min_reference, weight=inside)
        maps.append(cm.maps)
        frac.append(cm.weight_sum / np.maximum(cm.n_reference, 1))
    return np.concatenate(maps), np.concatenate(frac)


def response_curve(prob, frac):
    """Median probability per bin of L1_2 fraction; the fraction where the median crosses 0.5."""
    centres, medians, counts = [], [], []
    for lo, hi in zip(RESPONSE_BINS[:-1], RESPONSE_BINS[1:]):
        sel = (frac >= lo) & (frac < hi)
        if sel.sum() >= 5:
            centres.append(float(np.median(frac[sel])))
            medians.append(float(np.median(prob[sel])))
            counts.append(int(sel.sum()))
    crossing = None
    for (f0, m0), (f1, m1) in zip(zip(centres, medians), zip(centres[1:], medians[1:])):
        if m0 < 0.5 <= m1:
            crossing = f0 + (0.5 - m0) * (f1 - f0) / (m1 - m0)
            break
    if crossing is None and medians and medians[0] >= 0.5:
        crossing = 0.0
    return centres, medians, counts, crossing


def evaluate_heldout(predictor, settings, out_dir=None, threshold: float = 0.5) -> dict:
    """Metrics (and roc.png, response.png in out_dir) on the held-out specimens."""
    maps, frac = heldout_cubes(settings)
    prob = predictor(maps)
    clear = (frac >= L12_MIN) | (frac <= FCC_MAX)
    y = frac[clear] >= L12_MIN
    a = auc(prob[clear], y)
    centres, medians, counts, crossing = response_curve(prob, frac)
    ece, rows = expected_calibration_error(prob, frac)
    pure = (frac == 0) | (frac == 1)
    metrics = {"heldout_specimen_auc": a, "heldout_cubes": int(len(frac)), "heldout_ece": ece,
               "heldout_ece_pure": expected_calibration_error(prob[pure], frac[pure])[0],
               "heldout_ece_mixed": expected_calibration_error(prob[~pure], frac[~pure])[0],
               "reliability_heldout": rows,
               "heldout_clear_l12": int(y.sum()), "heldout_clear_fcc": int((~y).sum()),
               "heldout_fcc_false_positive_rate": float(np.mean(prob[clear][~y] >= threshold)) if (~y).any() else None,
               "heldout_l12_true_positive_rate": float(np.mean(prob[clear][y] >= threshold)) if y.any() else None,
               "response_fraction_at_median_0.5": crossing,
               "response": {"l12_fraction": centres, "median_probability": medians, "cubes": counts}}
    if out_dir is not None:
        fpr, tpr = roc_curve(prob[clear], y)
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.plot(fpr, tpr, label=f"held-out specimens, AUC = {a:.4f}")
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(f"{out_dir}/roc.png", dpi=110)
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(5.5, 4))
        ax.scatter(np.maximum(frac, 1e-3), prob, s=2, alpha=0.25, label="cubes")
        ax.plot(np.maximum(centres, 1e-3), medians, "r-o", ms=3, label="median")
        if crossing is not None:
            ax.axvline(max(crossing, 1e-3), color="k", ls=":", label=f"median = 0.5 at {crossing:.3f}")
        ax.set_xscale("log")
        ax.set_xlabel("L1_2 share of the cube's reference ions")
        ax.set_ylabel("predicted L1_2 probability")
        ax.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        fig.savefig(f"{out_dir}/response.png", dpi=110)
        plt.close(fig)
    log.info("held-out: AUC %.4f on %d clear cubes; median crosses 0.5 at L1_2 share %s",
             a, int(clear.sum()), crossing)
    return metrics


def calibrate(predictor, settings) -> dict:
    """Platt scaling of the network's output fitted on the cubes of `calibration_specimens`
    against each cube's true L1_2 share of reference ions, with the fit's record."""
    specimens = calibration_specimens()
    maps, share = heldout_cubes(settings, specimens)
    raw = predictor(maps)
    cal = fit_platt(raw, share)
    before, _ = expected_calibration_error(raw, share)
    after, _ = expected_calibration_error(apply_calibration(raw, cal), share)
    log.info("calibration: Platt a %.4f b %.4f on %d cubes of %d specimens; ECE %.4f -> %.4f", cal["a"], cal["b"],
             len(share), len(specimens), before, after)
    cal["fitted_on"] = {"specimens": specimens, "cubes": int(len(share)), "ece_before": before, "ece_after": after}
    return cal


def model_metrics(model, f, test_idx, settings, validation, positive_weight: float, calibrated: bool,
                  out_dir=None, heldout: bool = True) -> tuple:
    """(metrics, calibration) of a trained model: with `calibrated`, its output is calibrated on
    the cubes of simulated specimens and maps are called L1_2 at 0.5; else the operating
    threshold comes from `validation` (or W / (W + 1)). Then the test split and the held-out
    specimens."""
    from .predict import Predictor
    raw = Predictor(model)
    calibration, predictor = None, raw
    if calibrated:
        calibration = calibrate(raw, settings)
        predictor = Predictor(model, calibration=calibration)
        thr, record = 0.5, None
    else:
        thr, record = operating_threshold(raw, validation, positive_weight)
    metrics = test_split_metrics(predictor, f, test_idx, thr)
    metrics["decision_threshold_validation"] = record
    if heldout:
        metrics.update(evaluate_heldout(predictor, settings, out_dir, thr))
    if out_dir is not None:
        curves = {"test split maps": (metrics["simulated_test_ece"], metrics["reliability_test"])}
        if heldout:
            curves["held-out specimen cubes"] = (metrics["heldout_ece"], metrics["reliability_heldout"])
        plot_reliability(f"{out_dir}/reliability.png", curves)
    return metrics, calibration


def reevaluate(model_dir, dictionary=None, validation=None) -> dict:
    """Recompute a model's metrics (test split of its dictionary, held-out specimens) and write
    them into its card: after case-2 retraining, or when the evaluation itself improved. The
    operating threshold comes from `validation` or the one named in the card."""
    from ..errors import InputError
    from ..contracts.model_dir import load_card, load_model, write_card
    from ..contracts.dictionary import open_maps
    from .dataset import split
    from ..sdm import SDMSettings
    card = load_card(model_dir)
    dictionary = dictionary or card["dictionary"]["path"]
    f, settings, n = open_maps(dictionary)
    if settings != SDMSettings.from_dict(card["sdm"]):
        raise InputError(dictionary, "dictionary was made with other SDM settings than the model")
    tr = card["training"]
    test_idx, _ = split(n, tr.get("split_seed", tr["seed"]), tr["test_fraction"], tr["folds"])
    if tr.get("kinds", "all") != "all":
        test_idx = test_idx[np.isin(kinds_of_rows(f)[test_idx], tr["kinds"])]
    calibrated = bool(tr.get("calibrate", False))
    validation = validation or (card.get("metrics", {}).get("decision_threshold_validation") or {}).get("path")
    with f:
        metrics, calibration = model_metrics(load_model(model_dir), f, test_idx, settings, validation,
                                             float(tr.get("positive_weight", 1.0)), calibrated, model_dir)
    card["metrics"] = {**card.get("metrics", {}), **metrics}
    if calibration:
        card["calibration"] = calibration
    write_card(model_dir, card)
    return metrics
