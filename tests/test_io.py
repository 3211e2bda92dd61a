"""File formats: our readers against the library's, writers round-trip, foreign files parse."""
import numpy as np
import pytest

from apt_cnn_hpc.errors import InputError
from apt_cnn_hpc.io import RangeTable, ion_record_range, read_ions, read_ranges, write_pos, write_rrng
from apt_cnn_hpc.io.posfile import count_records

from conftest import FOREIGN


def _ions(rng, n=1000):
    return rng.normal(0, 10, (n, 3)).astype(np.float32), rng.uniform(1, 60, n).astype(np.float32)


def test_pos_roundtrip_and_record_ranges(tmp_path, rng):
    xyz, mq = _ions(rng)
    p = tmp_path / "a.pos"
    write_pos(p, xyz, mq)
    assert p.stat().st_size == 16 * len(mq)
    ions = read_ions(p)                       # through ifes
    np.testing.assert_array_equal(ions.xyz, xyz)
    np.testing.assert_array_equal(ions.mq, mq)
    part = ion_record_range(p, 123, 456)      # through our memory map
    np.testing.assert_array_equal(part.xyz, xyz[123:456])
    np.testing.assert_array_equal(part.mq, mq[123:456])
    assert count_records(p) == len(mq)


def test_epos_fields(tmp_path, rng):
    xyz, mq = _ions(rng, 50)
    rec = np.zeros((50, 11), dtype=">f4")
    rec[:, :3], rec[:, 3] = xyz, mq
    rec[:, 4:9] = rng.random((50, 5))
    raw = rec.view(">u4")
    raw[:, 9], raw[:, 10] = 1, 1               # delta pulses, ions per pulse (uint32)
    p = tmp_path / "a.epos"
    rec.tofile(p)
    full, part = read_ions(p), ion_record_range(p, 10, 20)
    np.testing.assert_array_equal(full.xyz, xyz)
    np.testing.assert_array_equal(full.mq, mq)
    np.testing.assert_array_equal(part.mq, mq[10:20])


@pytest.mark.parametrize("header,sep", [(True, ","), (False, ","), (False, ";"), (True, " ")])
def test_csv_keeps_every_ion(tmp_path, rng, header, sep):
    xyz, mq = _ions(rng, 20)
    p = tmp_path / "a.csv"
    rows = [sep.join(f"{v:.6f}" for v in (*x, m)) for x, m in zip(xyz, mq)]
    p.write_text(("x,y,z,mq\n" if header else "") + "\n".join(rows) + "\n")
    ions = read_ions(p)
    assert len(ions) == 20
    np.testing.assert_allclose(ions.mq, mq, atol=1e-5)


def test_nan_is_an_error_unless_dropped(tmp_path, rng):
    xyz, mq = _ions(rng, 100)
    xyz[7, 1] = np.nan
    mq[9] = np.inf
    p = tmp_path / "a.pos"
    write_pos(p, xyz, mq)
    with pytest.raises(InputError, match="2 ions have NaN/inf"):
        read_ions(p)
    assert len(read_ions(p, drop_invalid=True)) == 98


def test_ranges_label_and_roundtrip(tmp_path):
    t = RangeTable(np.array([6.9, 13.4, 26.8]), np.array([7.1, 13.6, 27.2]),
                   np.array([0, 1, 1], np.int16), ["Li", "Al"], [{"Li": 1}, {"Al": 1}])
    lab = t.label(np.array([7.0, 13.5, 27.0, 27.2, 50.0, 6.9]))
    np.testing.assert_array_equal(lab, [0, 1, 1, -1, -1, 0])   # [lo, hi): hi is outside
    p = tmp_path / "r.rrng"
    write_rrng(p, t)
    back = read_ranges(p)
    assert back.ion_names == ["Li", "Al"]
    np.testing.assert_allclose(back.lo, t.lo)
    np.testing.assert_array_equal(back.label(np.array([7.0, 13.5, 27.0, 50.0])), [0, 1, 1, -1])


def test_molecular_ions_keep_their_name(tmp_path):
    p = tmp_path / "m.rrng"
    p.write_text("[Ions]\nNumber=2\nIon1=Al\nIon2=AlO\n[Ranges]\nNumber=2\n"
                 "Range1=26.8 27.2 Vol:0.01 Al:1 Color:FF0000\n"
                 "Range2=42.8 43.3 Vol:0.02 Al:1 O:1 Color:00FF00\n")
    t = read_ranges(p)
    assert t.ion_names == ["Al", "AlO"]
    assert t.composition[1] == {"Al": 1, "O": 1}


def test_overlapping_ranges_are_rejected(tmp_path):
    p = tmp_path / "o.rrng"
    p.write_text("[Ranges]\nNumber=2\nRange1=26.8 27.2 Vol:0.01 Al:1 Color:FF0000\n"
                 "Range2=27.0 27.5 Vol:0.01 Mg:1 Color:00FF00\n")
    with pytest.raises(InputError, match="overlapping ranges"):
        read_ranges(p)


def test_malformed_rrng_is_rejected(tmp_path):
    p = tmp_path / "bad.rrng"
    p.write_text("[Ranges]\nNumber=two\n")
    with pytest.raises(InputError, match="bad.rrng"):
        read_ranges(p)


# Files written by other software (../shared/data/foreign, see PROVENANCE.md).
EXPECTED_FAILURES = {
    # two carbon ranges nested in each other (5.983-6.018 and 5.985-6.016 Da): ambiguous labels
    "VAlN_film_plan-view_700C.rrng": "overlapping ranges",
}
FOREIGN_RANGES = sorted((FOREIGN / "ranges").glob("*")) + sorted((FOREIGN / "pos").glob("*.rrng")) \
    if FOREIGN.is_dir() else []


@pytest.mark.skipif(not FOREIGN.is_dir(), reason="../shared/data/foreign not present")
@pytest.mark.parametrize("path", FOREIGN_RANGES, ids=lambda p: p.name)
def test_foreign_range_files(path):
    if path.name in EXPECTED_FAILURES:
        with pytest.raises(InputError, match=EXPECTED_FAILURES[path.name]):
            read_ranges(path)
        return
    t = read_ranges(path)
    assert len(t.lo) > 0 and np.all(t.hi > t.lo) and np.all(t.lo[1:] >= t.hi[:-1])
    assert all(t.ion_names)


@pytest.mark.skipif(not FOREIGN.is_dir(), reason="../shared/data/foreign not present")
def test_foreign_pos_with_custom_names():
    ions = read_ions(FOREIGN / "pos" / "test_simple_syn.pos")
    assert len(ions) == 619
    t = read_ranges(FOREIGN / "pos" / "test_simple_syn.rrng")
    lab = t.label(ions.mq)
    assert t.ion_names[0] == "Cluster1"
    assert (lab >= 0).mean() > 0.5
    part = ion_record_range(FOREIGN / "pos" / "test_simple_syn.pos", 100, 200)
    np.testing.assert_array_equal(part.xyz, ions.xyz[100:200])
