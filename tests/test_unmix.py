"""Unmixing cube shares into voxel fractions (segment/unmix.py): the fast operators equal naive
sums, and known fields come back from their cube shares."""
import numpy as np
import pytest

from apt_cnn_hpc.segment.unmix import cube_sum, cube_sum_adjoint, refine_grid, unmix

M = 4


def _naive_cube_sum(a, m):
    n = np.asarray(a.shape)
    out = np.zeros(tuple(n + m - 1))
    for idx in np.ndindex(*out.shape):
        lo = np.maximum(np.asarray(idx) - (m - 1), 0)
        hi = np.minimum(np.asarray(idx) + 1, n)
        out[idx] = a[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].sum()
    return out


def test_cube_sum_equals_naive_sum_and_adjoint_is_exact():
    rng = np.random.default_rng(0)
    a = rng.random((7, 6, 5))
    np.testing.assert_allclose(cube_sum(a, M), _naive_cube_sum(a, M), rtol=1e-12)
    y = rng.random(cube_sum(a, M).shape)
    assert np.sum(cube_sum(a, M) * y) == pytest.approx(np.sum(a * cube_sum_adjoint(y, M, a.shape)), rel=1e-12)


def _ball_field(shape, centre, radius):
    idx = np.indices(shape).transpose(1, 2, 3, 0) + 0.5
    return (np.linalg.norm(idx - np.asarray(centre), axis=-1) <= radius).astype(float)


@pytest.mark.parametrize("noise", [0.0, 0.03])
def test_unmix_recovers_balls_from_cube_shares(noise):
    """Two balls (r 3 and 1.6 voxels, 1 voxel apart), reference counts ~ Poisson(20) per voxel:
    shares of every cube, with or without noise, unmixed and cut at 1/2, give both balls back,
    where the mean share of the covering cubes (what the paper's sum sees) smears them together."""
    rng = np.random.default_rng(1)
    shape = (22, 22, 22)
    truth = np.maximum(_ball_field(shape, (8, 11, 11), 3.0), _ball_field(shape, (13.6, 11, 11), 1.6))
    n_ref = rng.poisson(20, shape).astype(float)
    den = cube_sum(n_ref, M)
    share = np.where(den > 0, cube_sum(n_ref * truth, M) / np.maximum(den, 1), 0)
    share = np.clip(share + rng.normal(0, noise, share.shape), 0, 1)
    weight = np.ones_like(share)
    o = unmix(share, weight, n_ref, M, 0.005 if noise else 0.0, np.ones(shape, bool))
    iou = lambda a: (a & (truth > 0.5)).sum() / (a | (truth > 0.5)).sum()  # noqa: E731
    mean_share = cube_sum_adjoint(share, M, shape) / M ** 3
    print(f"noise {noise}: IoU unmixed {iou(o > 0.5):.3f}, mean share {iou(mean_share > 0.5):.3f}")
    assert iou(o > 0.5) >= (0.99 if noise == 0 else 0.95) > iou(mean_share > 0.5) + 0.5
    from scipy import ndimage
    assert ndimage.label(o > 0.5)[1] == 2              # the two balls stay apart


def test_refine_grid_interpolates_between_voxel_centres():
    f = np.zeros((4, 4, 4))
    f[2:] = 1.0
    fine = refine_grid(f, 2)
    assert fine.shape == (8, 8, 8)
    # fine centres at 0.25, 0.75, ... voxels: the step between voxel centres 1.5 and 2.5 is linear
    np.testing.assert_allclose(fine[:, 0, 0], [0, 0, 0, 0.25, 0.75, 1, 1, 1])
