"""Local Fourier sums and the per-ion order parameter (sdm/order.py)."""
import numpy as np
import pytest

from apt_cnn_hpc.crystal import load_structure
from apt_cnn_hpc.crystal.block import BlockParams, simulate_block
from apt_cnn_hpc.crystal.detector import Instrument
from apt_cnn_hpc.sdm.order import local_fourier, order_parameter

SUPER = 0.405 / np.sqrt(2)


def test_local_fourier_equals_brute_force():
    rng = np.random.default_rng(2)
    pos = rng.uniform(0, 5, (1500, 3))
    w = rng.random((1500, 2))
    radii, periods = [0.6, 1.1], [SUPER, SUPER / 2]
    n, wsum, f = local_fourier(pos, w, radii, periods)
    for i in rng.choice(len(pos), 25, replace=False):
        d = np.linalg.norm(pos - pos[i], axis=1)
        for r, radius in enumerate(radii):
            j = d < radius
            assert n[i, r] == j.sum()
            np.testing.assert_allclose(wsum[i, r], w[j].sum(axis=0), rtol=1e-12)
            for k, period in enumerate(periods):
                e = np.exp(2j * np.pi * pos[j, 2] / period)
                np.testing.assert_allclose(f[i, r, 0, k], e.sum(), rtol=1e-10)
                np.testing.assert_allclose(f[i, r, 1:, k], (w[j] * e[:, None]).sum(axis=0), rtol=1e-10)


@pytest.mark.parametrize("sigma_z", [0.03, 0.05])
def test_order_parameter_separates_l12_from_fcc(sigma_z):
    """Solute on every other {022} plane along <011> in L1_2: the order parameter at a/sqrt(2)
    is several times larger than in a random solid solution of the same solute content."""
    rng = np.random.default_rng(3)
    out = {}
    for name, structure in (("l12", load_structure("l12_al3limg")), ("fcc", load_structure("fcc_al"))):
        if name == "fcc":
            structure = structure.with_occupancy([{"Al": 0.78, "Li": 0.18, "Mg": 0.04}])
        pos, spec, names, _ = simulate_block(structure, BlockParams(Instrument(0.5, 0.3, sigma_z)), 3.0, rng)
        solute = np.isin(spec, [names.index("Li"), names.index("Mg")])
        centre = np.flatnonzero(np.all(np.abs(pos) < 1.5, axis=1))
        out[name] = np.median(order_parameter(pos, solute, 1.0, SUPER, query=centre))
    print(sigma_z, out)
    assert out["l12"] > 3 * out["fcc"]
