"""The dictionary's map kinds: labels and training targets follow the L1_2 share of the
reference atoms; Table 1 maps stay as the paper made them."""
import numpy as np
import pytest

from apt_cnn_hpc.config import load_config
from apt_cnn_hpc.library.simulate import LibrarySpec, simulate_map
from apt_cnn_hpc.sdm import SDMSettings


def _spec(name, counts):
    cfg = load_config(name)
    cfg["counts"] = counts
    return LibrarySpec(cfg)


def test_table1_mixed_maps_are_labelled_by_a_share_threshold():
    spec, s = _spec("library_table1", {"fcc": 2, "l12": 2, "mixed": 30}), SDMSettings()
    thr, low = spec.mixed_threshold, spec.mixed_fcc_below
    kinds = [spec.kind_of(i) for i in range(34)]
    assert kinds == ["fcc"] * 2 + ["l12"] * 2 + ["mixed"] * 30
    assert not spec.class_independent            # Table 1: sigma_z differs between the classes
    fractions = []
    for i in range(4, 34):
        img, label, target, p = simulate_map(spec, s, i)
        f = p["l12_fraction"]
        fractions.append(f)
        assert label == int(f >= thr) and target == label
        assert not low < f < thr            # the ambiguous band is never in the library
        assert img.dtype == np.uint8 and img.max() == 255
    assert min(fractions) < 0.1 and max(fractions) > 0.2   # a spread of partial coverings
    assert simulate_map(spec, s, 0)[1] == 0 and simulate_map(spec, s, 2)[1] == 1


def test_default_library_targets_the_share_with_class_independent_acquisition():
    spec, s = _spec("library", {"fcc": 2, "l12": 2, "mixed": 24}), SDMSettings()
    assert spec.class_independent and spec.mixed_target == "share"
    targets = []
    for i in range(28):
        _, label, target, p = simulate_map(spec, s, i)
        if i < 4:
            assert target == label == (i >= 2)
        else:
            assert target == pytest.approx(p["l12_fraction"]) and label == int(target >= 0.5)
            targets.append(target)
    assert min(targets) < 0.1 and 0.1 < max(targets)
    assert any(0.05 < t < 0.95 for t in targets)   # partial shares are kept, not redrawn
    spheres = [simulate_map(spec, s, i)[3]["spheres"] for i in range(4, 28)]
    assert set(spheres) <= {1.0, 2.0, 3.0} and max(spheres) > 1    # dense precipitation: neighbours


def test_neighbouring_spheres_keep_their_gap():
    from apt_cnn_hpc.crystal import load_structure
    from apt_cnn_hpc.crystal.block import Inclusion
    from apt_cnn_hpc.library.simulate import _apart
    l12 = load_structure("l12_al3limg")
    a = Inclusion(l12, np.zeros(3), 1.0)
    assert _apart(Inclusion(l12, np.array([2.31, 0, 0]), 1.0), [a]) != []
    assert _apart(Inclusion(l12, np.array([2.29, 0, 0]), 1.0), [a]) == []


def test_same_index_same_map():
    spec, s = LibrarySpec(load_config("library")), SDMSettings()
    a, b = simulate_map(spec, s, 123), simulate_map(spec, s, 123)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[2:] == b[2:]
