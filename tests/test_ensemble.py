"""Ensembles: `train --members K`, `scan --ensemble K` gives the members' mean and spread, and
`segment` counts the voxels the members disagree on."""
import json

import h5py
import numpy as np
import pytest

from conftest import assert_clean_error, run_cli


@pytest.fixture(scope="module")
def ensemble(small_specimen, tmp_path_factory):
    d = tmp_path_factory.mktemp("ensemble")
    proc = run_cli("simulate", "--counts", 96, 96, 24, "--seed", 8, "--out", d / "dict.h5", ranks=2)
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = run_cli("train", "--dictionary", d / "dict.h5", "--out", d / "ens", "--members", 2, "--epochs", 2,
                   "--batch", 8, "--folds", 1, "--skip-heldout")
    assert proc.returncode == 0, proc.stderr[-3000:]
    scans = {}
    for name, args, ranks in (("ens", ["--model", d / "ens", "--ensemble", 2], 2),
                              ("m0", ["--model", d / "ens" / "member_0"], 1),
                              ("m1", ["--model", d / "ens" / "member_1"], 1)):
        scans[name] = d / f"{name}.h5"
        proc = run_cli("scan", f"{small_specimen}.pos", "--range", f"{small_specimen}.rrng", "--out", scans[name],
                       *args, ranks=ranks)
        assert proc.returncode == 0, proc.stderr[-3000:]
    scans["pair"] = [d / "pair0.h5", d / "pair1.h5"]      # two models at once: one file each
    proc = run_cli("scan", f"{small_specimen}.pos", "--range", f"{small_specimen}.rrng", "--out", *scans["pair"],
                   "--model", d / "ens" / "member_0", d / "ens" / "member_1", ranks=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return d, scans


def test_several_models_in_one_scan_equal_their_own_scans(ensemble):
    """The maps are made once; each file is what a scan with that model alone writes."""
    _, scans = ensemble
    for pair, alone in zip(scans["pair"], (scans["m0"], scans["m1"])):
        with h5py.File(pair) as f, h5py.File(alone) as g:
            np.testing.assert_allclose(f["voxels/probability_sum"][:], g["voxels/probability_sum"][:], atol=1e-5)
            np.testing.assert_array_equal(f["cubes/origin_nm"][:], g["cubes/origin_nm"][:])
            assert "probability_members" not in f["cubes"] and f.attrs["ensemble_members"] == 1
            assert json.loads(f["provenance"].attrs["json"])["model_sha256"] == \
                json.loads(g["provenance"].attrs["json"])["model_sha256"]


def test_members_differ_by_their_seed(ensemble):
    d, _ = ensemble
    spec = json.loads((d / "ens" / "ensemble.json").read_text())
    assert spec["members"] == ["member_0", "member_1"] and spec["seeds"] == [0, 1]
    cards = [json.loads((d / "ens" / m / "model_card.json").read_text()) for m in spec["members"]]
    assert [c["training"]["seed"] for c in cards] == [0, 1]
    assert [c["training"]["split_seed"] for c in cards] == [0, 0]      # one test split for all
    assert (d / "ens" / "member_0" / "model.keras").read_bytes() != (d / "ens" / "member_1" / "model.keras").read_bytes()


def test_ensemble_scan_is_the_members_mean_and_spread(ensemble):
    _, scans = ensemble
    with h5py.File(scans["ens"]) as e, h5py.File(scans["m0"]) as a, h5py.File(scans["m1"]) as b:
        s0, s1 = a["voxels/probability_sum"][:], b["voxels/probability_sum"][:]
        assert np.abs(s0 - s1).max() > 1e-3                     # the members do disagree somewhere
        np.testing.assert_allclose(e["voxels/probability_sum"][:], (s0 + s1) / 2, atol=1e-5)
        np.testing.assert_allclose(e["voxels/probability_sum_sd"][:], np.abs(s0 - s1) / np.sqrt(2), atol=1e-5)
        members = e["cubes/probability_members"][:]
        np.testing.assert_allclose(members[:, 0], a["cubes/probability"][:], atol=1e-6)
        np.testing.assert_allclose(members[:, 1], b["cubes/probability"][:], atol=1e-6)
        assert e.attrs["ensemble_members"] == 2
        prov = json.loads(e["provenance"].attrs["json"])
        assert [m["model_sha256"] for m in prov["ensemble"]] == [
            json.loads(a["provenance"].attrs["json"])["model_sha256"],
            json.loads(b["provenance"].attrs["json"])["model_sha256"]]
    assert "probability_sum_sd" in scans["ens"].with_suffix(".xdmf").read_text()


def test_segment_counts_uncertain_voxels(ensemble):
    _, scans = ensemble
    proc = run_cli("segment", scans["ens"], "--set", "methods.paper.threshold=40")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with h5py.File(scans["ens"]) as f:
        mean, sd = f["voxels/probability_sum"][:], f["voxels/probability_sum_sd"][:]
        window = f["voxels/window_count"][:].astype(float)
        uncertain = f["precipitates/uncertain"][:]
        summary = json.loads(f["precipitates"].attrs["comparison"])
    scale = 64 / np.maximum(window, 1)
    expect = (window > 0) & (np.abs(mean * scale - 40) < 2 * sd * scale)
    np.testing.assert_array_equal(uncertain, expect)
    assert summary["uncertain_voxels"] == int(expect.sum())
    assert f"{int(expect.sum())} voxels uncertain" in proc.stderr


def test_ensemble_bad_requests(ensemble, small_specimen, tmp_path):
    d, _ = ensemble
    args = ["scan", f"{small_specimen}.pos", "--range", f"{small_specimen}.rrng", "--out", tmp_path / "x.h5"]
    assert_clean_error(run_cli(*args, "--model", d / "ens", "--ensemble", 3), "ensemble.json", "holds 2 members")
    assert_clean_error(run_cli(*args, "--ensemble", 2), "not an ensemble directory")
    assert_clean_error(run_cli(*args, "--model", d / "ens" / "member_0", d / "ens" / "member_1"),
                       "2 models need 2 --out files")
    assert not (tmp_path / "x.h5").exists()
