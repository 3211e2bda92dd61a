"""Crystal library and synthetic specimens."""
import h5py
import numpy as np
import pytest

from apt_cnn_hpc.config import load_config
from apt_cnn_hpc.crystal import load_structure, orientation_matrix
from apt_cnn_hpc.crystal.specimen import make_specimen
from apt_cnn_hpc.crystal.structure import structure_from_dict
from apt_cnn_hpc.errors import InputError
from apt_cnn_hpc.io import read_ions, read_ranges

from conftest import run_cli


@pytest.mark.parametrize("pole", [(0, 1, 1), (0, 0, 1), (1, 1, 1), (1, 2, 3)])
def test_pole_goes_to_z(pole):
    for az, tilt in [(0, 0), (37, 0.8)]:
        r = orientation_matrix(pole, (1, 0, 0), az, tilt)
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(r) == pytest.approx(1)
        z = r @ (np.asarray(pole) / np.linalg.norm(pole))
        assert np.degrees(np.arccos(np.clip(z[2], -1, 1))) == pytest.approx(abs(tilt), abs=1e-5)


def test_l12_variants_put_solute_on_one_fcc_sublattice():
    l12, fcc = load_structure("l12_al3limg"), load_structure("fcc_al")
    assert l12.composition()["Al"] == pytest.approx(0.7675)
    for v in range(4):
        sub = l12.site_sublattice(fcc.sites, v)
        assert sorted(sub.tolist()) == [0, 1, 1, 1]      # one corner site, three face sites
        assert sub[v] == 0                                # variant v puts the corner on site v


def test_bad_structure_definition():
    with pytest.raises(InputError, match="sums to"):
        structure_from_dict({"lattice_constant_nm": 0.4, "sublattices": [
            {"sites": [[0, 0, 0]], "occupancy": {"Al": 0.5}}]}, "x.yaml")
    with pytest.raises(InputError, match="lattice_constant_nm"):
        structure_from_dict({"lattice_constant_nm": -1, "sublattices": [
            {"sites": [[0, 0, 0]], "occupancy": {"Al": 1}}]}, "x.yaml")


def _small(**over):
    cfg = load_config("specimen")
    cfg.update({"size_nm": [14, 14, 14], "seed": 3, **over})
    return cfg


def test_specimen_composition_and_truth():
    s = make_specimen(_small())
    names = s["species_names"]
    sp, pid = s["species_true"], s["precipitate_id"]
    real = ~s["is_background"]
    overall = {n: np.mean(sp[real] == names.index(n)) for n in ("Li", "Mg")}
    assert overall["Li"] == pytest.approx(0.0679, abs=0.01)
    assert overall["Mg"] == pytest.approx(0.0518, abs=0.01)
    li_in = np.mean(sp[real & (pid > 0)] == names.index("Li"))
    li_out = np.mean(sp[real & (pid == 0)] == names.index("Li"))
    assert li_in > 2.5 * li_out                       # delta' is Li-rich
    # every ion labelled inside precipitate k is within r_k + 4 sigma of its centre
    k = pid > 0
    d = np.linalg.norm(s["xyz"][k] - s["centres"][pid[k] - 1], axis=1)
    assert np.all(d < s["radii"][pid[k] - 1] + 4 * 0.35)


def test_same_composition_specimen_has_no_contrast():
    s = make_specimen(_small(same_composition=True))
    names, sp, pid = s["species_names"], s["species_true"], s["precipitate_id"]
    real = ~s["is_background"]
    for el in ("Li", "Mg"):
        inside = np.mean(sp[real & (pid > 0)] == names.index(el))
        outside = np.mean(sp[real & (pid == 0)] == names.index(el))
        assert inside == pytest.approx(outside, abs=0.012)


def test_cone_specimen(tmp_path):
    proc = run_cli("specimen", "--out", tmp_path / "c", "--shape", "cone", "--seed", 2)
    assert proc.returncode == 0, proc.stderr
    ions = read_ions(tmp_path / "c.pos")
    r = np.hypot(ions.xyz[:, 0], ions.xyz[:, 1])
    top = r[ions.xyz[:, 2] < 5].max()
    bottom = r[ions.xyz[:, 2] > 45].max()
    assert 7 < top < 10 and bottom > top + 5           # 8 nm apex radius, 10 degree shank
    t = read_ranges(tmp_path / "c.rrng")
    assert set(t.ion_names) == {"Al", "Li", "Mg"}
    lab = t.label(ions.mq)
    with h5py.File(tmp_path / "c_truth.h5") as f:
        bg = f["ions/is_background"][:]
        assert len(bg) == len(ions)
        assert np.mean(lab[~bg] >= 0) > 0.97             # real ions fall in their ranges
        assert f["provenance"].attrs["json"]


def test_streamed_specimen_is_a_valid_specimen_of_the_same_setup(tmp_path):
    """`specimen --stream` writes slab by slab: the same precipitates as the in-memory specimen of
    the config, the same ion density and composition, truth that matches every ion (through the
    reconstruction's curvature and depth scale), background spread over the depth, depth order."""
    import json

    from apt_cnn_hpc.contracts.truth import read_truth
    from apt_cnn_hpc.fileutil import sha256_file
    cfg = _small(size_nm=[14, 14, 30], seed=4)
    cfg["detector"] = {**cfg["detector"], "curvature_radius_nm": 40.0, "z_scale": 1.03, "background_fraction": 0.02}
    (tmp_path / "s.yaml").write_text(json.dumps(cfg))
    proc = run_cli("specimen", "--config", tmp_path / "s.yaml", "--out", tmp_path / "s", "--stream")
    assert proc.returncode == 0, proc.stderr
    ions = read_ions(tmp_path / "s.pos")
    mem = make_specimen(cfg)
    truth = read_truth(tmp_path / "s_truth.h5", len(ions))
    np.testing.assert_array_equal(truth.centre_nm, mem["centres"])
    assert len(ions) == pytest.approx(len(mem["xyz"]), rel=0.01)
    with h5py.File(tmp_path / "s_truth.h5") as f:
        sp, bg = f["ions/species"][:], f["ions/is_background"][:]
        names = list(f["ions"].attrs["species_names"])
        prov = json.loads(f["provenance"].attrs["json"])
    assert prov["inputs"]["pos"]["sha256"] == sha256_file(tmp_path / "s.pos")
    pid, real = truth.precipitate_id, ~bg
    assert np.mean(sp[real] == names.index("Li")) == pytest.approx(0.0679, abs=0.01)
    assert np.mean(sp[real] == names.index("Mg")) == pytest.approx(0.0518, abs=0.01)
    assert np.mean(sp[real & (pid > 0)] == names.index("Li")) > 2.5 * np.mean(sp[real & (pid == 0)] == names.index("Li"))
    k = (pid > 0) & real
    d = np.linalg.norm(ions.xyz[k] - truth.reconstructed_centres()[pid[k] - 1], axis=1)
    assert k.sum() > 1000 and np.all(d < truth.radius_nm[pid[k] - 1] * 1.05 + 4 * 0.35)
    # background: its share, and spread over the depth like the ions
    assert bg.mean() == pytest.approx(0.02 / 1.02, rel=0.15)
    z = ions.xyz[:, 2]
    assert np.mean(z[bg] < 15) == pytest.approx(np.mean(z < 15), abs=0.06)
    # evaporation order: by depth, slab after slab
    assert np.corrcoef(np.arange(len(z)), z)[0, 1] > 0.99
    assert set(read_ranges(tmp_path / "s.rrng").ion_names) == {"Al", "Li", "Mg"}
