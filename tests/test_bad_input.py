"""Bad input: one line on stderr naming the file and the problem, exit 2, no traceback, no output."""
import numpy as np
import pytest

from apt_cnn_hpc.io import write_pos

from conftest import FOREIGN, assert_clean_error, run_cli

RRNG = ("[Ions]\nNumber=1\nIon1=Al\n[Ranges]\nNumber=1\n"
        "Range1=26.8 27.2 Vol:0.01661 Al:1 Color:808080\n")


@pytest.fixture
def good(tmp_path):
    rng = np.random.default_rng(1)
    xyz = rng.uniform(0, 6, (3000, 3)).astype(np.float32)
    write_pos(tmp_path / "ok.pos", xyz, np.full(3000, 27.0, np.float32))
    (tmp_path / "ok.rrng").write_text(RRNG)
    return tmp_path


def sdm(d, pos, rrng, *extra):
    return run_cli("sdm", pos, "--range", rrng, "--box", 1, 1, 1, 5, 5, 5, "--out", d / "out", *extra)


def assert_no_output(d):
    left = [p.name for p in d.iterdir() if p.name.startswith(("out", ".out"))]
    assert not left, left


def test_good_input_works(good):
    proc = sdm(good, good / "ok.pos", good / "ok.rrng")
    assert proc.returncode == 0, proc.stderr
    assert (good / "out.npz").exists() and (good / "out.png").exists()


@pytest.mark.parametrize("case,needle", [
    ("truncated", "not a multiple of the 16-byte record"),
    ("empty", "empty"),
    ("nan", "NaN/inf"),
    ("missing", "file not found"),
    ("extension", "unknown ion file extension"),
])
def test_bad_ion_file(good, case, needle):
    bad = good / "bad.pos"
    if case == "truncated":
        bad.write_bytes((good / "ok.pos").read_bytes()[:-5])
    elif case == "empty":
        bad.write_bytes(b"")
    elif case == "nan":
        raw = np.fromfile(good / "ok.pos", dtype=">f4").reshape(-1, 4)
        raw[10, 0] = np.nan
        raw.tofile(bad)
    elif case == "extension":
        bad = good / "bad.xyz"
        bad.write_bytes((good / "ok.pos").read_bytes())
    proc = sdm(good, bad, good / "ok.rrng")
    assert_clean_error(proc, str(bad), needle)
    assert_no_output(good)


def test_corrupt_apt_file(good):
    bad = good / "bad.apt"
    bad.write_bytes(b"not an AP Suite file at all" * 10)
    assert_clean_error(sdm(good, bad, good / "ok.rrng"), "bad.apt", "cannot read APT")
    assert_no_output(good)


def test_nan_dropped_on_request(good):
    raw = np.fromfile(good / "ok.pos", dtype=">f4").reshape(-1, 4)
    raw[10, 0] = np.inf
    raw.tofile(good / "nan.pos")
    proc = sdm(good, good / "nan.pos", good / "ok.rrng", "--drop-invalid")
    assert proc.returncode == 0, proc.stderr
    assert "dropped 1 ions" in proc.stderr


@pytest.mark.parametrize("case,text,needle", [
    ("malformed", "[Ranges]\nNumber=x\n", "cannot read RRNG"),
    ("overlap", RRNG.replace("Number=1\nRange1", "Number=2\nRange2=27.1 27.5 Vol:0.01 Mg:1 Color:808080\nRange1"),
     "overlapping ranges"),
    ("noranges", "[Ions]\nNumber=1\nIon1=Al\n", "[Ranges] section not found"),
    ("empty", "", "empty"),
])
def test_bad_range_file(good, case, text, needle):
    bad = good / f"{case}.rrng"
    bad.write_text(text)
    proc = sdm(good, good / "ok.pos", bad)
    assert_clean_error(proc, str(bad), needle)
    assert_no_output(good)


def test_missing_and_unknown_range_file(good):
    assert_clean_error(sdm(good, good / "ok.pos", good / "nope.rrng"), "nope.rrng", "file not found")
    (good / "r.txt").write_text(RRNG)
    assert_clean_error(sdm(good, good / "ok.pos", good / "r.txt"), "r.txt", "unknown range file extension")
    assert_no_output(good)


def test_species_not_in_range_file(good):
    proc = sdm(good, good / "ok.pos", good / "ok.rrng", "--pair", "Li-Li")
    assert_clean_error(proc, "ok.rrng", "species 'Li'")


@pytest.mark.skipif(not FOREIGN.is_dir(), reason="../shared/data/foreign not present")
def test_foreign_overlapping_range_file(good):
    bad = FOREIGN / "ranges" / "VAlN_film_plan-view_700C.rrng"
    assert_clean_error(sdm(good, good / "ok.pos", bad), bad.name, "overlapping ranges")


@pytest.mark.parametrize("yaml_text,needle", [
    ("efficiency: [0.5, 1.5]\n", "efficiency"),
    ("sigma_xy_nm: {fcc: [-1, 0.5], l12: [0.2, 0.8]}\n", "fcc"),
    ("structures: {fcc: fcc_al, l12: no_such_structure}\n", "unknown structure 'no_such_structure'"),
    ("counts: [1, 2\n", "invalid YAML"),
])
def test_bad_library_config(tmp_path, yaml_text, needle):
    cfg = tmp_path / "lib.yaml"
    cfg.write_text(yaml_text)
    proc = run_cli("simulate", "--config", cfg, "--counts", 2, 2, "--out", tmp_path / "out.h5")
    assert_clean_error(proc, needle)
    assert not list(tmp_path.glob("*out.h5*"))


def test_existing_output_is_kept_without_overwrite(good):
    (good / "out.npz").write_text("precious")
    proc = sdm(good, good / "ok.pos", good / "ok.rrng")
    assert_clean_error(proc, "out.npz", "--overwrite")
    assert (good / "out.npz").read_text() == "precious"
