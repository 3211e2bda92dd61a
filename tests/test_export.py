"""`apt-cnn export --nexus`: the NeXus file validates with pynxtools' own validation and holds
the scan's positions, ranging, per-ion labels, precipitate table and voxel map; changed inputs,
unsegmented scans, existing outputs and a missing pynxtools are one-line errors with no output."""
import shutil
import sys

import h5py
import numpy as np
import pytest
# the nexus extra: the test command's install (scripts/install.sh) brings it, so no skip
from pynxtools.dataconverter.helpers import collector
from pynxtools.dataconverter.validate_file import _get_def_map
from pynxtools.dataconverter.validation import validate_dict_against, validate_hdf_group_against

from apt_cnn_hpc import cli
from apt_cnn_hpc.contracts.scan_file import read_voxel_map
from apt_cnn_hpc.contracts.segmentation import read_segmentation
from apt_cnn_hpc.export import run as export_run
from apt_cnn_hpc.export.nexus import APPDEFS, nxapm_template
from apt_cnn_hpc.io import read_ions, read_ranges

from conftest import assert_clean_error, run_cli

NAIVE = "/entry1/atom_probe/reconstruction/naive_discretization/data"


@pytest.fixture(scope="module")
def scans(small_specimen, tmp_path_factory):
    """The small specimen scanned on one rank (raw.h5) and a copy segmented by isocomposition
    (scan.h5, the method's table has precipitates), exported to scan.nxs."""
    d = tmp_path_factory.mktemp("export")
    proc = run_cli("scan", f"{small_specimen}.pos", "--range", f"{small_specimen}.rrng", "--out", d / "raw.h5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    shutil.copyfile(d / "raw.h5", d / "scan.h5")
    proc = run_cli("segment", d / "scan.h5", "--method", "isocomposition")
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_cli("export", d / "scan.h5", "--nexus", d / "scan.nxs")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"dir": d, "prefix": small_specimen, "raw": d / "raw.h5", "scan": d / "scan.h5", "nxs": d / "scan.nxs"}


def test_template_validates_against_each_application_definition(scans):
    """pynxtools' dataconverter validation (what its converter runs before writing) finds no
    problem in either entry, undocumented paths included."""
    template = nxapm_template(export_run.load_source(scans["scan"]))
    entries = export_run.entry_templates(template)
    assert [(e, a) for e, a, _, _ in entries] == list(APPDEFS.items())
    for entry, appdef, data, _ in entries:
        collector.clear()
        assert validate_dict_against(appdef, data, ignore_undocumented=False), (entry, sorted(collector.get()))
        assert not collector.get()


def test_written_file_validates(scans):
    """pynxtools' file validation: the results entry is valid; the NXapm entry's only complaint is
    the axis @units of naive_discretization, which NXapm declares as an attribute and pynxtools
    0.16's file validator never counts (they are written: checked here)."""
    nxs = str(scans["nxs"])
    assert _get_def_map(nxs) == {"entry1": "NXapm", "entry2": "NXapm_paraprobe_clusterer_results"}
    known = {f"{NAIVE}/axis_{a}/@unitsValidationProblem.MissingRequiredAttributeNone" for a in "xyz"}
    with h5py.File(nxs, "r") as f:
        for entry, appdef in _get_def_map(nxs).items():
            collector.clear()
            valid = validate_hdf_group_against(appdef, f[entry], nxs)
            problems = set(collector.get())
            assert problems <= known, (entry, problems - known)
            assert valid == (not problems)
        for a in "xyz":
            assert f[f"{NAIVE}/axis_{a}"].attrs["units"] == "nm"
    assert valid   # entry2, the results


def test_file_holds_the_scan_and_its_inputs(scans):
    prefix = scans["prefix"]
    ions = read_ions(f"{prefix}.pos")
    ranges = read_ranges(f"{prefix}.rrng")
    seg = read_segmentation(scans["scan"])
    rec = seg.methods[seg.default]
    vm = read_voxel_map(scans["scan"])
    with h5py.File(scans["nxs"], "r") as f:
        ap = f["entry1/atom_probe"]
        xyz = ap["reconstruction/reconstructed_positions"]
        assert xyz.attrs["units"] == "nm"
        np.testing.assert_array_equal(xyz[:], ions.xyz)
        np.testing.assert_array_equal(ap["mass_to_charge_conversion/mass_to_charge"][:], ions.mq)
        pi = ap["ranging/peak_identification"]
        np.testing.assert_array_equal(pi["iontypes"][:], ranges.label(ions.mq) + 1)
        assert [pi[f"ion{k}/name"][()].decode() for k in range(1, len(ranges.ion_names) + 1)] == ranges.ion_names
        np.testing.assert_allclose(pi["ion1/mass_to_charge_range"][:],
                                   np.stack([ranges.lo, ranges.hi], 1)[ranges.species == 0], rtol=1e-6)
        assert ap["reconstruction/source/checksum"][()].decode() == vm.provenance["inputs"]["input"]["sha256"]
        assert ap["ranging/source/checksum"][()].decode() == vm.provenance["inputs"]["range"]["sha256"]
        np.testing.assert_array_equal(ap["reconstruction/naive_discretization/data/intensity"][:],
                                      vm.ion_count.transpose(2, 1, 0))
        assert f["entry1/profiling/program1/program"][()].decode() == "apt-cnn-hpc"
        assert f["entry1/specimen/is_simulation"][()]        # the specimen's truth file lies beside it

        ca = f["entry2/cluster_analysis1"]
        labels = np.full(len(ions), -1, np.int64)
        labels[ca["ion_labels/targets"][:]] = ca["ion_labels/numerical_label"][:]
        np.testing.assert_array_equal(labels, rec.ion_precipitate_id)
        table = ca["precipitates"]
        assert rec.count > 0
        np.testing.assert_array_equal(table["cluster_id"][:], np.arange(1, rec.count + 1))
        for key in ("radius_nm", "volume_nm3", "centroid_nm", "ion_count", "composition_at_pct"):
            np.testing.assert_array_equal(table[key][:], rec.table[key])
        assert table["radius_nm"].attrs["units"] == "nm"
        np.testing.assert_array_equal(table["number_of_members"][:],
                                      np.bincount(rec.ion_precipitate_id[rec.ion_precipitate_id > 0],
                                                  minlength=rec.count + 1)[1:])
        vox = ca["voxel_l12_fraction"]
        np.testing.assert_array_equal(vox["l12_fraction"][:], rec.voxel_l12_fraction)
        assert list(vox.attrs["axes"]) == ["axis_x", "axis_y", "axis_z"]
        grid = vm.grid
        np.testing.assert_allclose(vox["axis_z"][:], grid.origin_nm[2] + (np.arange(grid.shape[2]) + 0.5) * grid.voxel_nm)
        assert vox["axis_z"].attrs["units"] == "nm"
        assert ca["window/number_of_ions"][()] == len(ions)


def test_scan_still_writes_its_xdmf_sidecar(scans):
    text = scans["raw"].with_suffix(".xdmf").read_text()
    assert "raw.h5:/voxels/probability_sum" in text


def test_changed_input_is_a_one_line_error_and_no_output(scans, tmp_path):
    changed = tmp_path / "s.pos"
    data = bytearray(scans["prefix"].with_suffix(".pos").read_bytes())
    data[-1] ^= 1                      # one bit of the last ion's m/n
    changed.write_bytes(bytes(data))
    out = tmp_path / "out.nxs"
    proc = run_cli("export", scans["scan"], "--nexus", out, "--input", changed)
    assert_clean_error(proc, "SHA-256 differs")
    assert not out.exists() and not list(tmp_path.glob(".out.nxs*"))


def test_unsegmented_scan_is_a_one_line_error_and_no_output(scans, tmp_path):
    out = tmp_path / "out.nxs"
    proc = run_cli("export", scans["raw"], "--nexus", out)
    assert_clean_error(proc, "not segmented")
    assert not out.exists()


def test_existing_output_is_kept_without_overwrite(scans, tmp_path):
    out = tmp_path / "out.nxs"
    out.write_text("keep me")
    proc = run_cli("export", scans["scan"], "--nexus", out)
    assert_clean_error(proc, "--overwrite")
    assert out.read_text() == "keep me"


def test_without_pynxtools_the_error_names_the_extra(scans, tmp_path, monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "pynxtools" or m.startswith("pynxtools.")]:
        monkeypatch.setitem(sys.modules, name, None)
    out = tmp_path / "out.nxs"
    assert cli.main(["export", str(scans["scan"]), "--nexus", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'apt-cnn-hpc[nexus]'" in err[0], err
    assert not out.exists()
