"""The estimated F1-optimal threshold of calibrated probabilities (segment/decision.py): its
estimate equals the direct sums, it finds the threshold that maximises the true F1 of labels drawn
from those probabilities, and it stays at its bounds where there is nothing to find."""
import numpy as np

from apt_cnn_hpc.segment.decision import BINS, expected_f1, f1_threshold
from apt_cnn_hpc.segment.score import prf


def calibrated(rng, n_in, n_out, spread_in, spread_out):
    """Probabilities of a boundary-heavy precipitate phase and of a matrix, with truth drawn from
    them (so they are calibrated by construction)."""
    p = np.concatenate([rng.beta(*spread_in, n_in), rng.beta(*spread_out, n_out)])
    return p, rng.random(len(p)) < p


def test_estimate_equals_the_direct_sums():
    rng = np.random.default_rng(0)
    p = rng.random(5000) ** 3
    t, f = expected_f1(p)
    for k in (0, 37, 400, 500, 999):
        lab = p >= k / BINS
        tp = p[lab].sum()
        assert abs(f[k] - 2 * tp / (lab.sum() + p.sum())) < 1e-12
    assert t[500] == 0.5


def test_threshold_finds_the_true_f1_optimum_below_one_half():
    """Uncertain ions mostly inside (a small-precipitate shell): the estimated threshold is below
    0.5, its true F1 within 0.01 of the best threshold's and above the F1 at 0.5."""
    rng = np.random.default_rng(1)
    p, truth = calibrated(rng, 40_000, 200_000, (2.0, 1.5), (0.3, 12.0))
    t = f1_threshold(p)
    grid = np.linspace(0.05, 0.95, 91)
    best = max(prf(p > g, truth)["f1"] for g in grid)
    f_t, f_half = prf(p > t, truth)["f1"], prf(p > 0.5, truth)["f1"]
    assert t < 0.45
    assert f_t >= best - 0.01 and f_t > f_half + 0.005


def test_confident_phases_keep_their_labels_and_pure_matrix_keeps_the_floor():
    rng = np.random.default_rng(2)
    p, _ = calibrated(rng, 20_000, 100_000, (30.0, 0.3), (0.3, 30.0))    # both phases sure
    assert np.mean((p > f1_threshold(p)) != (p > 0.5)) < 0.002
    fcc = rng.beta(0.3, 60.0, 200_000)                                   # pure matrix, a few p > 0.3
    assert f1_threshold(fcc) < 0.4            # unbounded, the rule would label the matrix's tail
    assert f1_threshold(fcc, 0.4) == 0.4
    assert f1_threshold(np.zeros(100)) == 0.5 and f1_threshold(np.zeros(0)) == 0.5
