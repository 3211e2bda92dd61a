"""Calibrated probabilities: the map from the network's output to a probability a user can read.

A model trained on the L1_2 share of mixed maps (library `mixed.target: share`) predicts the
probability that a reference ion drawn from the cube lies in L1_2, calibrated on the library's
own mix of structures and shares. The cubes of a real scan differ (the precipitates' order, the
shares a precipitate population makes), so Platt scaling (Platt 1999) in logit space,
p = sigmoid(a logit(raw) + b), is fitted by cross-entropy on the cubes of simulated specimens of
other seeds against their true shares (model/evaluate.py `calibrate`). The expected calibration
error (ECE) and a reliability diagram are measured on held-out maps and held-out specimens.
"""
import numpy as np
from scipy.optimize import minimize

from .cnn import logit

BINS = 10


def apply_calibration(raw, calibration: dict | None) -> np.ndarray:
    """Calibrated probabilities of raw network outputs (identity without a calibration)."""
    raw = np.asarray(raw, np.float64)
    if not calibration:
        return raw
    if calibration.get("method") != "platt":
        raise ValueError(f"unknown calibration method {calibration.get('method')!r}")
    return 1.0 / (1.0 + np.exp(-(calibration["a"] * logit(raw) + calibration["b"])))


def fit_platt(raw, target) -> dict:
    """(a, b) minimising the cross-entropy of sigmoid(a logit(raw) + b) against targets in [0, 1]."""
    z = logit(raw)
    t = np.asarray(target, np.float64)

    def loss(ab):
        s = ab[0] * z + ab[1]
        # cross-entropy with logits: log(1 + e^s) - t s, and its gradient
        value = np.mean(np.logaddexp(0, s) - t * s)
        g = 1.0 / (1.0 + np.exp(-s)) - t
        return value, np.array([np.mean(g * z), np.mean(g)])

    res = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return {"method": "platt", "a": float(res.x[0]), "b": float(res.x[1])}


def expected_calibration_error(prob, outcome, bins: int = BINS) -> tuple[float, list]:
    """ECE = sum over equal-width bins of (share of items) x |mean probability - mean outcome|;
    `outcome` may be fractional (a cube's L1_2 share). Returns (ECE, reliability rows)."""
    prob, outcome = np.asarray(prob, np.float64), np.asarray(outcome, np.float64)
    k = np.minimum((prob * bins).astype(int), bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        sel = k == b
        if sel.any():
            mp, mo = float(prob[sel].mean()), float(outcome[sel].mean())
            ece += sel.mean() * abs(mp - mo)
            rows.append({"bin": [b / bins, (b + 1) / bins], "n": int(sel.sum()), "mean_probability": mp,
                         "mean_outcome": mo})
    return float(ece), rows


def plot_reliability(path, curves: dict):
    """Reliability diagram: mean outcome against mean probability per bin, one line per set."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 4.6))
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    for label, (ece, rows) in curves.items():
        ax.plot([r["mean_probability"] for r in rows], [r["mean_outcome"] for r in rows], "o-", ms=3,
                label=f"{label}: ECE {ece:.3f}")
    ax.set_xlabel("calibrated L1_2 probability (bin mean)")
    ax.set_ylabel("observed L1_2 share (bin mean)")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
