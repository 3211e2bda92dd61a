"""The per-ion method (segment/methods/ion_mlp.py with models/ion) on synthetic specimens it was
not trained on: labels recover the truth at least as well as the 1 nm voxel oracle, the
probabilities stay calibrated at an efficiency beyond the training range, neighbours 0.8 nm apart
come out as two precipitates, and pure FCC is left alone."""
import numpy as np
import pytest

from apt_cnn_hpc.config import load_config, merge
from apt_cnn_hpc.crystal.detector import Instrument
from apt_cnn_hpc.crystal.specimen import make_specimen
from apt_cnn_hpc.model.calibration import expected_calibration_error
from apt_cnn_hpc.sdm import VoxelGrid
from apt_cnn_hpc.segment.inputs import ScanData
from apt_cnn_hpc.segment.methods import REGISTRY
from apt_cnn_hpc.segment.score import oracle_labels, prf


def _run(seed, size=20, **over):
    cfg = merge(load_config("specimen"), {"size_nm": [size] * 3, **over})
    cfg["seed"] = seed
    s = make_specimen(cfg)
    xyz = s["xyz"].astype(np.float64)
    data = ScanData(None, None, xyz, s["ranges"].label(s["mq"]), s["ranges"], None, f"seed {seed} ranges")
    res = REGISTRY["ion_mlp"].from_config({}).run(data)
    return s, xyz, res


def test_labels_recover_truth_and_stay_calibrated_beyond_the_training_range():
    """Efficiency 0.9 (training: 0.3-0.85), sigma_xy 0.2 nm, pole tilted 1.5 deg."""
    s, xyz, res = _run(2101, detector={"efficiency": 0.9, "sigma_xy_nm": 0.2, "pole_tilt_deg": 1.5,
                                       "pole_tilt_azimuth_deg": 130.0})
    truth = s["precipitate_id"] > 0
    called = res.ion_precipitate_id > 0
    f1, oracle = prf(called, truth)["f1"], prf(oracle_labels(xyz, truth, VoxelGrid.covering(xyz, 1.0)), truth)["f1"]
    ece = expected_calibration_error(res.ion_probability, truth)[0]
    volume = called.sum() / truth.sum() - 1
    print(f"F1 {f1:.3f} oracle {oracle:.3f} ({f1 / oracle:.3f}x) ECE {ece:.4f} volume {volume:+.3f}")
    assert f1 >= oracle and ece <= 0.03 and abs(volume) <= 0.1


def test_neighbours_closer_than_a_nanometre_come_out_apart():
    """Dense precipitates (25 %, gaps from 0.5 nm): of the pairs of precipitates wholly inside
    whose surfaces are 0.5-1.0 nm apart, >= 90 % get two different labels (each precipitate's
    label: the most frequent among its ions)."""
    s, xyz, res = _run(2102, size=22, precipitates={"volume_fraction": 0.25, "radius_mean_nm": 2.0,
                                                    "radius_sd_nm": 0.6, "min_gap_nm": 0.5})
    ids, pid = res.ion_precipitate_id, s["precipitate_id"]
    centres = Instrument(**s["instrument"]).reconstruct(np.asarray(s["centres"], float).reshape(-1, 3))
    radii = np.asarray(s["radii"])
    lo, hi = xyz.min(0), xyz.max(0)
    inside = np.all((centres - radii[:, None] > lo) & (centres + radii[:, None] < hi), axis=1)
    label = {}
    for k in np.flatnonzero(inside):
        own = ids[pid == k + 1]
        label[k] = np.bincount(own[own > 0]).argmax() if (own > 0).any() else 0
    pairs = [(a, b) for a in label for b in label if a < b
             and 0.5 <= np.linalg.norm(centres[a] - centres[b]) - radii[a] - radii[b] <= 1.0]
    apart = [label[a] != label[b] and label[a] > 0 and label[b] > 0 for a, b in pairs]
    print(f"{sum(apart)}/{len(pairs)} close pairs apart")
    assert len(pairs) >= 5 and np.mean(apart) >= 0.9


@pytest.mark.parametrize("detector", [{"efficiency": 0.35}, {"sigma_z_nm": 0.08}])
def test_pure_fcc_is_not_called_l12(detector):
    s, xyz, res = _run(2103, size=16, detector=detector, precipitates={"volume_fraction": 0.0})
    print(detector, np.mean(res.ion_precipitate_id > 0), np.mean(res.ion_probability))
    assert np.mean(res.ion_precipitate_id > 0) <= 0.002


def test_train_ions_writes_a_calibrated_model_and_rejects_bad_requests(tmp_path):
    """A tiny training (4 specimens of 10 nm on 2 ranks): the model directory is complete and
    readable, its card names the seeds it was trained and calibrated on; bad requests are one line."""
    from apt_cnn_hpc.contracts.ion_model import load_ion_models
    from conftest import assert_clean_error, run_cli
    args = ["train-ions", "--out", tmp_path / "m", "--work", tmp_path / "w", "--size-nm", 10, "--rows", 2000,
            "--epochs", 1]
    proc = run_cli(*args, "--specimens", 4, "--validation", 1, ranks=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    card, stage1, stage2 = load_ion_models(tmp_path / "m")
    assert card["training"]["specimens"] == [8001, 8002, 8003, 8004] and card["training"]["ranks"] == 2
    assert card["calibration"]["method"] == "platt" and card["calibration"]["fitted_on"]["seeds"] == [9001]
    assert len(stage1) == 2 and stage1[0].input_shape[1] == card["features"]["stage1"]
    assert stage2.input_shape[1] == card["features"]["stage2"]
    assert not list(tmp_path.glob(".m.*"))                      # no temporary directory left behind
    assert_clean_error(run_cli(*args, "--specimens", 0), "--specimens")
    assert_clean_error(run_cli(*args, "--specimens", 2, "--validation", 1, ranks=2), "cannot feed two folds")
