"""Case 2 extraction (+-1 degree augmentation) feeding training, and the explanation figures."""
import json

import h5py
import numpy as np

from apt_cnn_hpc.extract import extract_maps
from apt_cnn_hpc.io import read_ions, read_ranges
from apt_cnn_hpc.sdm import PartnerIndex, SDMSettings
from apt_cnn_hpc.sdm.normalise import to_uint8

from conftest import assert_clean_error, run_cli


def test_extract_zero_tilt_equals_direct_map(small_specimen):
    s = SDMSettings()
    ions = read_ions(f"{small_specimen}.pos")
    t = read_ranges(f"{small_specimen}.rrng")
    lab = t.label(ions.mq)
    lo = np.array([-2.0, -2.0, 6.0])
    maps, params = extract_maps(ions.xyz, lab, t.ion_names, s, lo[None], augment=3)
    assert maps.shape == (3, 150, 150)
    np.testing.assert_allclose(params["tilt_deg"], [-1, 0, 1])
    al = lab == t.index("Al")
    ids = np.arange(len(lab))
    ref = al & np.all((ions.xyz >= lo) & (ions.xyz < lo + 4), axis=1)
    idx = PartnerIndex(ions.xyz[al].astype(float), ids[al], s)
    zx, _ = idx.histograms(ions.xyz[ref].astype(float), ids[ref], np.zeros(ref.sum(), np.int64), 1)
    np.testing.assert_array_equal(maps[1], to_uint8(zx[0]))
    assert not np.array_equal(maps[0], maps[1])      # the tilt changes the map


def test_extract_cli_then_train_with_extra_then_explain(small_specimen, tmp_path):
    (tmp_path / "cubes.csv").write_text("x0,y0,z0\n-7,-7,1\n-7,3,1\n")
    proc = run_cli("extract", f"{small_specimen}.pos", "--range", f"{small_specimen}.rrng",
                   "--cubes", tmp_path / "cubes.csv", "--label", "fcc", "--augment", 7,
                   "--out", tmp_path / "x.h5")
    assert proc.returncode == 0, proc.stderr
    with h5py.File(tmp_path / "x.h5") as f:
        assert f["maps"].shape == (14, 150, 150) and set(f["labels"][:]) == {0}
    proc = run_cli("simulate", "--counts", 40, 40, "--out", tmp_path / "d.h5")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("train", "--dictionary", tmp_path / "d.h5", "--extra", tmp_path / "x.h5",
                   "--out", tmp_path / "m", "--epochs", 1, "--batch", 8, "--folds", 1, "--skip-heldout")
    assert proc.returncode == 0, proc.stderr[-3000:]
    card = json.loads((tmp_path / "m" / "model_card.json").read_text())
    assert card["extra"][0]["path"].endswith("x.h5")
    proc = run_cli("explain", "--model", tmp_path / "m", "--maps", tmp_path / "d.h5", "--out", tmp_path / "ex")
    assert proc.returncode == 0, proc.stderr[-3000:]
    pngs = sorted(p.name for p in (tmp_path / "ex").glob("*.png"))
    assert "gradcam_map0.png" in pngs and "gradcam_map1.png" in pngs
    assert sum(p.startswith("features_map0_conv") for p in pngs) == 4
    for p in (tmp_path / "ex").glob("*.png"):
        assert p.read_bytes()[:4] == b"\x89PNG"


def test_extract_bad_cube_list(small_specimen, tmp_path):
    (tmp_path / "c.csv").write_text("x0,y0,z0\n1,2\n")
    proc = run_cli("extract", f"{small_specimen}.pos", "--range", f"{small_specimen}.rrng",
                   "--cubes", tmp_path / "c.csv", "--label", "fcc", "--out", tmp_path / "x.h5")
    assert_clean_error(proc, "c.csv", "three")
    assert not (tmp_path / "x.h5").exists()
