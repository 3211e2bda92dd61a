"""Labels from calibrated per-ion probabilities.

Thresholding a calibrated probability at 0.5 minimises the count of wrong ions; per-ion F1 and
the volume of the phase are better served lower where the uncertain ions are mostly precipitate
ions (the boundary shell of small precipitates). For calibrated p the F1-optimal threshold is
F*/2 (Lipton, Elkan & Narayanaswamy, ECML PKDD 2014), and F(t) is estimated from the
probabilities alone, no truth needed: TP(t) = sum of p over p > t, FP + TP = #(p > t), TP + FN =
sum of all p, so F(t) ~ 2 TP(t) / (#(p > t) + sum p). bench/decision.py measures it."""
import numpy as np

BINS = 1000     # thresholds on a fixed grid: the same answer for any order or split of the ions


def expected_f1(p: np.ndarray, bins: int = BINS) -> tuple[np.ndarray, np.ndarray]:
    """(thresholds t_k = k / bins, estimated F1 of labelling p > t_k) for calibrated p."""
    p = np.asarray(p, np.float64)
    k = np.minimum((p * bins).astype(np.int64), bins - 1)
    n = np.bincount(k, minlength=bins)[::-1].cumsum()[::-1]            # ions in bins >= k
    s = np.bincount(k, weights=p, minlength=bins)[::-1].cumsum()[::-1]
    # p > t_k is bin >= k (up to ions exactly on an edge, a measure-zero set for continuous p)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(n + s[0] > 0, 2 * s / (n + s[0]), 0.0)
    return np.arange(bins) / bins, f


def f1_threshold(p: np.ndarray, lo: float = 0.0, hi: float = 0.5) -> float:
    """The estimated F1-optimal threshold of calibrated probabilities p, within [lo, hi]; hi
    when no ion is likely at all."""
    t, f = expected_f1(p)
    if f.max() <= 0:                 # also no ions at all
        return float(hi)
    return float(np.clip(t[int(np.argmax(f))], lo, hi))
