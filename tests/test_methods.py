"""Every recognition method of the registry, one parametrised test each (after MDAnalysis's
`params_for_cls`): the per-ion contract and table it writes, and identical results whether the
scan ran on 1, 2 or 3 ranks."""
import shutil

import numpy as np
import pytest

from apt_cnn_hpc.config import SegmentConfig
from apt_cnn_hpc.contracts.segmentation import read_segmentation
from apt_cnn_hpc.errors import InputError
from apt_cnn_hpc.io import read_ions, read_ranges
from apt_cnn_hpc.segment.inputs import load_scan_data
from apt_cnn_hpc.segment.methods import REGISTRY, Method

from conftest import run_cli

METHODS = sorted(REGISTRY)


@pytest.fixture(scope="module")
def segmented_by_ranks(rank_scans, tmp_path_factory):
    """The 1-, 2- and 3-rank scans of the small specimen, each segmented by every method: those
    that cannot read the default model's scan (the paper's rule needs the paper's model) on the
    Table 1 model's scan of the same run. {n: {method: record}}."""
    d = tmp_path_factory.mktemp("methods")
    out = {}
    for n, scan in rank_scans.items():
        data = load_scan_data(scan)
        on_table1 = [m for m in METHODS if REGISTRY[m]().unavailable(data)]
        out[n] = {}
        for src, methods in ((scan, [m for m in METHODS if m not in on_table1]),
                             (scan.with_name(f"{scan.stem}_table1.h5"), on_table1)):
            if not methods:
                continue
            local = d / f"{src.stem}.h5"
            shutil.copyfile(src, local)
            proc = run_cli("segment", local, "--method", *methods)
            assert proc.returncode == 0, proc.stderr[-3000:]
            out[n].update(read_segmentation(local).methods)
    assert set(out[1]) == set(METHODS)
    return out


def test_every_method_is_configured_and_documented():
    cfg = SegmentConfig.load()
    assert cfg.default in REGISTRY
    for name, cls in REGISTRY.items():
        assert issubclass(cls, Method) and cls.name == name and cls.title and cls.__doc__
        assert name in cfg.methods, f"configs/segment.yaml has no defaults for {name}"
        cls.from_config(cfg.methods[name])      # the shipped parameters are valid


@pytest.mark.parametrize("name", METHODS)
def test_method_contract_and_rank_invariance(name, segmented_by_ranks, small_specimen):
    n_ions = len(read_ions(f"{small_specimen}.pos"))
    ranges = read_ranges(f"{small_specimen}.rrng")
    unranged = ranges.label(read_ions(f"{small_specimen}.pos").mq) < 0
    recs = {n: methods[name] for n, methods in segmented_by_ranks.items()}
    rec = recs[1]
    ids = rec.ion_precipitate_id
    assert ids.dtype == np.int32 and ids.shape == (n_ions,)
    assert ids.min() >= -1
    k = rec.count
    # unranged ions are labelled by where they lie; every precipitate holds ranged ions
    assert set(np.unique(ids[(ids > 0) & ~unranged])) == set(range(1, k + 1))
    assert ids.max(initial=0) == k and set(np.unique(ids[ids > 0])) == set(range(1, k + 1))
    t = rec.table
    assert t["centroid_nm"].shape == (k, 3) and t["ion_count_per_species"].shape == (k, len(ranges.ion_names))
    np.testing.assert_array_equal(t["ion_count"], np.bincount(ids[ids > 0], minlength=k + 1)[1:])
    np.testing.assert_allclose(t["radius_nm"], (3 * t["volume_nm3"] / (4 * np.pi)) ** (1 / 3), rtol=1e-9)
    assert np.all(t["volume_nm3"] > 0) and np.all(t["ion_count"] > 0)
    comp = t["composition_at_pct"]
    np.testing.assert_allclose(comp.sum(axis=1), 100.0, rtol=1e-9)
    assert np.all(t["composition_sd_at_pct"] >= 0)
    assert rec.voxel_l12_fraction is not None and 0 <= rec.voxel_l12_fraction.min() <= rec.voxel_l12_fraction.max() <= 1
    if rec.voxel_label is not None:
        assert rec.voxel_label.max(initial=0) == k
    for n in (2, 3):
        np.testing.assert_array_equal(recs[n].ion_precipitate_id, ids, err_msg=f"{name}: {n} ranks vs 1")


def test_unknown_method_and_bad_parameters_are_one_line_errors(rank_scans, tmp_path):
    from conftest import assert_clean_error
    scan = tmp_path / "scan.h5"
    shutil.copyfile(rank_scans[1].with_name("scan1_table1.h5"), scan)     # where the paper's rule runs
    assert_clean_error(run_cli("segment", scan, "--method", "nonsense"), "unknown method", "paper")
    assert_clean_error(run_cli("segment", scan, "--set", "methods.paper.threshold=70"), "between 0 and 64")
    assert_clean_error(run_cli("segment", scan, "--set", "methods.paper.colour=red"), "unexpected keyword")
    assert_clean_error(run_cli("segment", scan, "--set", "default=nonsense"), "default method 'nonsense'")
    assert_clean_error(run_cli("segment", scan, "--set", "methods.isocomposition.element=Xe"),
                       "'Xe' is not in the range file")
    default_scan = tmp_path / "default.h5"
    shutil.copyfile(rank_scans[1], default_scan)
    assert_clean_error(run_cli("segment", default_scan, "--method", "paper"), "needs the paper's uncalibrated")
    with pytest.raises(InputError, match="connectivity"):
        REGISTRY["paper"].from_config({"connectivity": 5})
