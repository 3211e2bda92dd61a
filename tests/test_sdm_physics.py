"""Plane spacings in SDMs of the project's own crystals along <011>."""
import numpy as np
import pytest

from apt_cnn_hpc.crystal import load_structure
from apt_cnn_hpc.crystal.block import BlockParams, simulate_block
from apt_cnn_hpc.crystal.detector import Instrument
from apt_cnn_hpc.sdm import PartnerIndex, SDMSettings
from apt_cnn_hpc.sdm.analysis import dominant_period, relative_amplitude

A = 0.405
D022 = A / np.sqrt(8)       # 0.1432 nm
SUPER = A / np.sqrt(2)      # 0.2864 nm


def z_sdm(structure, rng, sigma_z=0.02, pole=(0, 1, 1), species="Al"):
    s = SDMSettings()
    pos, spec, names, _ = simulate_block(structure, BlockParams(Instrument(0.6, 0.3, sigma_z), pole=pole), 4.0, rng)
    sel = spec == names.index(species)
    ids = np.arange(len(pos))
    ref = sel & np.all(np.abs(pos) < 2.5, axis=1)
    idx = PartnerIndex(pos[sel], ids[sel], s)
    _, z = idx.histograms(pos[ref], ids[ref], np.zeros(int(ref.sum()), np.int64), 1, zx=False, z=True)
    return z[0], s.z_edges()


@pytest.mark.parametrize("seed", [1, 2])
def test_fcc_al_al_period_is_022_spacing(seed):
    z, e = z_sdm(load_structure("fcc_al"), np.random.default_rng(seed))
    assert abs(dominant_period(z, e) - D022) / D022 < 0.02


def test_l12_superlattice_component_is_ten_times_fcc():
    rng = np.random.default_rng(3)
    zf, e = z_sdm(load_structure("fcc_al"), rng)
    zl, _ = z_sdm(load_structure("l12_al3limg"), rng)
    a_fcc, a_l12 = relative_amplitude(zf, e, SUPER), relative_amplitude(zl, e, SUPER)
    assert a_l12 > 10 * a_fcc, (a_l12, a_fcc)
    # both still carry the fundamental {022} planes
    assert abs(dominant_period(zl, e) - D022) / D022 < 0.02 or relative_amplitude(zl, e, D022) > a_l12


def test_l12_minority_sublattice_has_only_superlattice_period():
    """Li sits on the cube corners only: the Li-Li map repeats every a/sqrt(2)."""
    z, e = z_sdm(load_structure("l12_al3limg"), np.random.default_rng(4), species="Li")
    assert abs(dominant_period(z, e) - SUPER) / SUPER < 0.02


def test_other_pole_gives_its_own_spacing():
    """Along <001> the FCC planes are a/2 = 0.2025 nm apart: the rotation really is general."""
    z, e = z_sdm(load_structure("fcc_al"), np.random.default_rng(5), pole=(0, 0, 1))
    assert abs(dominant_period(z, e) - A / 2) / (A / 2) < 0.02


def test_l10_added_by_config_alone_orders_along_c():
    """L1_0 CuAu from configs/structures: Au-Au planes along [001] repeat every c = a."""
    st = load_structure("l10_cuau")
    z, e = z_sdm(st, np.random.default_rng(6), pole=(0, 0, 1), species="Au")
    assert abs(dominant_period(z, e, max_nm=0.6) - st.a_nm) / st.a_nm < 0.02
