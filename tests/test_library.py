"""The dictionary's map kinds: labels follow the L1_2 share of the reference atoms."""
import numpy as np

from apt_cnn_hpc.config import load_config
from apt_cnn_hpc.library.simulate import LibrarySpec, simulate_map
from apt_cnn_hpc.sdm import SDMSettings


def test_mixed_maps_are_labelled_by_their_l12_share():
    cfg = load_config("library")
    cfg["counts"] = {"fcc": 2, "l12": 2, "mixed": 30}
    spec, s = LibrarySpec(cfg), SDMSettings()
    thr, low = spec.mixed_threshold, spec.mixed_fcc_below
    kinds = [spec.kind_of(i) for i in range(34)]
    assert kinds == ["fcc"] * 2 + ["l12"] * 2 + ["mixed"] * 30
    fractions = []
    for i in range(4, 34):
        img, label, p = simulate_map(spec, s, i)
        f = p["l12_fraction"]
        fractions.append(f)
        assert label == int(f >= thr)
        assert not low < f < thr            # the ambiguous band is never in the library
        assert img.dtype == np.uint8 and img.max() == 255
    assert min(fractions) < 0.1 and max(fractions) > 0.2   # a spread of partial coverings
    assert simulate_map(spec, s, 0)[1] == 0 and simulate_map(spec, s, 2)[1] == 1


def test_same_index_same_map():
    spec, s = LibrarySpec(load_config("library")), SDMSettings()
    a, b = simulate_map(spec, s, 123), simulate_map(spec, s, 123)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[2] == b[2]
