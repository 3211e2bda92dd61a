"""The benchmark's 95 % intervals (segment/score.py): ions go to the precipitate whose surface is
nearest, the cluster bootstrap of F1 / oracle covers the figure a fresh specimen of the same kind
gives, and identical labels give no spread."""
import numpy as np

from apt_cnn_hpc.contracts.truth import Truth
from apt_cnn_hpc.segment.score import precipitate_cells, prf, radius_bias_interval, resampled_intervals


def test_cells_follow_the_nearest_surface_not_the_nearest_centre():
    """An ion 2.2 nm from a 0.5 nm precipitate's centre and 4.5 nm from a 4 nm one's lies 1.7 nm
    from the first surface and 0.5 nm from the second: it belongs to the large one."""
    truth = Truth(np.zeros(3, np.int64), np.array([[0.0, 0, 0], [6.7, 0, 0]]), np.array([0.5, 4.0]), {})
    xyz = np.array([[-2.2, 0, 0], [2.2, 0, 0], [6.7, 0, 0]])
    assert precipitate_cells(xyz, truth).tolist() == [0, 1, 1]


def _specimen(rng, cells: int, per_cell: int = 400):
    """A specimen of `cells` precipitate cells whose method and oracle error rates vary from cell
    to cell (some boundaries are harder than others): (method labels, oracle labels, truth, cells)."""
    cell = np.repeat(np.arange(cells), per_cell)
    inside = rng.random(len(cell)) < 0.3
    hard = rng.uniform(0.02, 0.3, cells)[cell]
    oracle = np.where(rng.random(len(cell)) < 0.12, ~inside, inside)
    pred = np.where(rng.random(len(cell)) < hard, ~inside, inside)
    return pred, oracle, inside, cell


def test_interval_covers_the_figure_of_fresh_specimens():
    """Over 60 specimens of 30 cells, the interval drawn from each contains the mean figure of
    many specimens in >= 85 % of them (a 95 % interval; few clusters make it a little narrow)."""
    rng = np.random.default_rng(3)
    figures, intervals = [], []
    for _ in range(60):
        pred, oracle, inside, cell = _specimen(rng, 30)
        figures.append(prf(pred, inside)["f1"] / prf(oracle, inside)["f1"])
        intervals.append(resampled_intervals(pred, oracle, inside, cell, resamples=400)["f1_over_oracle_ci95"])
    centre = np.mean(figures)
    covered = np.mean([lo <= centre <= hi for lo, hi in intervals])
    widths = np.array([hi - lo for lo, hi in intervals])
    assert covered >= 0.85, covered
    assert np.all(widths > 0.005)        # the cells' differences show
    assert np.std(figures) < np.median(widths) < 8 * np.std(figures)


def test_no_spread_without_disagreement_and_none_for_one_cell():
    rng = np.random.default_rng(4)
    _, oracle, inside, cell = _specimen(rng, 10)
    r = resampled_intervals(oracle, oracle, inside, cell, resamples=200)
    assert r["f1_over_oracle_ci95"] == [1.0, 1.0]
    assert r["resampled_cells"] == 10
    assert resampled_intervals(oracle, oracle, inside, np.zeros(len(cell), np.int64))["f1_over_oracle_ci95"] is None


def test_radius_interval_contains_the_pairs_bias():
    rng = np.random.default_rng(5)
    rt = rng.uniform(1.5, 4, 20)
    rf = rt * (1 + rng.normal(-0.05, 0.03, 20))
    lo, hi = radius_bias_interval(rt, rf)
    assert lo < rf.mean() / rt.mean() - 1 < hi and hi < 0
    assert radius_bias_interval(rt[:2], rf[:2]) is None
