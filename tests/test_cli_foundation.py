"""The Foundation stages through the command line: specimen -> sdm, simulate on 1 and 2 ranks."""
import h5py
import numpy as np

from apt_cnn_hpc.config import load_config
import pytest

from apt_cnn_hpc.sdm.analysis import dominant_period, relative_amplitude

from conftest import run_cli

SUPER = 0.405 / np.sqrt(2)


def _boxes(truth):
    """A cube inside the largest precipitate and a 4 nm cube of matrix far from every one."""
    with h5py.File(truth) as f:
        c, r = f["precipitates/centre_nm"][:], f["precipitates/radius_nm"][:]
    k = int(np.argmax(r))
    h = min(r[k] / np.sqrt(3), 2.0)
    prec = (c[k] - h, c[k] + h)
    for x in np.arange(-6, 6.1, 1.0):
        for y in np.arange(-6, 6.1, 1.0):
            for z in np.arange(2, 14.1, 1.0):
                centre = np.array([x, y, z])
                if np.all(np.linalg.norm(c - centre, axis=1) > r + 2 * np.sqrt(3) + 1):
                    return prec, (centre - 2, centre + 2), r[k]
    pytest.fail("no matrix region in the specimen")


def test_sdm_sees_superlattice_in_precipitate_not_in_matrix(small_specimen, tmp_path):
    prec, mat, radius = _boxes(f"{small_specimen}_truth.h5")
    assert radius > 1.5
    amps = {}
    for name, (lo, hi) in {"prec": prec, "mat": mat}.items():
        proc = run_cli("sdm", f"{small_specimen}.pos", "--range", f"{small_specimen}.rrng",
                       "--box", *lo, *hi, "--out", tmp_path / name)
        assert proc.returncode == 0, proc.stderr
        d = np.load(tmp_path / f"{name}.npz")
        assert d["zx_counts"].shape == (150, 150) and len(d["dz_edges_nm"]) == 151
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert abs(dominant_period(d["z_counts"], d["z_edges_nm"]) - 0.1432) < 0.003
        amps[name] = relative_amplitude(d["z_counts"], d["z_edges_nm"], SUPER)
    assert amps["prec"] > 5 * amps["mat"], amps


def _read_dictionary(path):
    with h5py.File(path) as f:
        return f["maps"][:], f["labels"][:], {k: f["params"][k][:] for k in f["params"]}


def test_simulate_same_file_for_one_and_two_ranks(tmp_path):
    outs = {}
    for n in (1, 2):
        out = tmp_path / f"d{n}.h5"
        proc = run_cli("simulate", "--counts", 9, 7, "--seed", 5, "--out", out, ranks=n)
        assert proc.returncode == 0, proc.stderr
        outs[n] = _read_dictionary(out)
    maps, labels, params = outs[1]
    assert maps.shape == (16, 150, 150) and maps.dtype == np.uint8
    assert labels.tolist() == [0] * 9 + [1] * 7   # --counts gives no mixed maps
    assert maps.max() == 255 and len(np.unique(maps[0])) > 20
    lib = load_config("library")      # every acquisition parameter within its configured range
    for key in ("sigma_z_nm", "pole_tilt_deg"):
        lo, hi = lib[key]
        assert np.all((params[key] >= lo) & (params[key] <= hi)) and np.ptp(params[key]) > 0, key
    np.testing.assert_array_equal(outs[2][0], maps)
    np.testing.assert_array_equal(outs[2][1], labels)
    for k in params:
        np.testing.assert_array_equal(outs[2][2][k], params[k])
    with h5py.File(tmp_path / "d2.h5") as f:
        assert '"n_ranks": 2' in f["provenance"].attrs["json"]
