"""Horovod training: identical weights on every rank, a falling loss, resume after a kill,
and clear errors for bad input."""
import json
import re
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from apt_cnn_hpc.fileutil import sha256_file
from conftest import assert_clean_error, cli_env, run_cli


@pytest.fixture(scope="module")
def small_dictionary(tmp_path_factory):
    d = tmp_path_factory.mktemp("dict")
    # the paper's Table 1 library: separable in a few epochs, which is what these tests need
    proc = run_cli("simulate", "--library", "library_table1", "--counts", 160, 160, 40, "--seed", 3,
                   "--out", d / "dict.h5", ranks=2)
    assert proc.returncode == 0, proc.stderr
    return d / "dict.h5"


def test_two_ranks_identical_weights_and_falling_loss(small_dictionary, tmp_path):
    val = tmp_path / "val.h5"
    assert run_cli("simulate", "--library", "library_table1", "--counts", 20, 20, "--seed", 4,
                   "--out", val).returncode == 0
    proc = run_cli("train", "--dictionary", small_dictionary, "--out", tmp_path / "m", "--epochs", 4,
                   "--batch", 8, "--folds", 1, "--skip-heldout", "--validation", val, ranks=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    digests = dict(re.findall(r"rank (\d) fold 0 weights sha256 ([0-9a-f]{64})", proc.stderr))
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"]
    card = json.loads((tmp_path / "m" / "model_card.json").read_text())
    losses = [h["train_loss"] for h in card["history"]]
    assert len(losses) == 4 and losses[-1] < losses[0] and losses[-1] < 0.65, losses  # chance: 0.693
    assert card["training"]["ranks"] == 2 and card["training"]["learning_rate"] == pytest.approx(0.002)
    assert card["parameters"] == 1666881
    assert card["sdm"]["map_bins"] == 150 and card["dictionary"]["sha256"]
    assert card["metrics"]["simulated_test_accuracy"] >= 0.6
    # the operating threshold comes from the validation maps, which the card names
    record = card["metrics"]["decision_threshold_validation"]
    assert record["maps"] == 40 and record["sha256"] == sha256_file(val)
    assert 0 < card["metrics"]["decision_threshold"] < 1 and record["accuracy"] >= 0.6
    assert (tmp_path / "m" / "model.keras").stat().st_size < 8 * 2 ** 20


def test_killed_training_resumes(small_dictionary, tmp_path):
    out = tmp_path / "m"
    args = ["train", "--dictionary", small_dictionary, "--out", out, "--epochs", 5, "--folds", 1,
            "--batch", 8, "--skip-heldout"]
    cmd = [sys.executable, "-m", "apt_cnn_hpc", *map(str, args)]
    p = subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True)
    state = out / "checkpoints" / "state.json"
    deadline = time.time() + 600
    while time.time() < deadline and p.poll() is None:
        if state.exists() and json.loads(state.read_text()).get("epoch", 0) >= 1:
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    before = json.loads(state.read_text())
    assert 1 <= before["epoch"] < 5 and not (out / "model.keras").exists()
    proc = run_cli(*args, "--resume")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"resuming at fold 0, epoch {before['epoch']}" in proc.stderr
    card = json.loads((out / "model_card.json").read_text())
    assert [h["epoch"] for h in card["history"]] == [1, 2, 3, 4, 5]
    for a, b in zip(before["history"], card["history"]):
        assert a["train_loss"] == b["train_loss"]   # the finished epochs were not redone


def test_bad_dictionary(tmp_path):
    assert_clean_error(run_cli("train", "--dictionary", tmp_path / "none.h5", "--out", tmp_path / "m"),
                       "none.h5", "file not found")
    with h5py.File(tmp_path / "wrong.h5", "w") as f:
        f["maps"] = [[1.0]]
    assert_clean_error(run_cli("train", "--dictionary", tmp_path / "wrong.h5", "--out", tmp_path / "m"),
                       "wrong.h5", "not an apt-cnn dictionary or extract file")
    (tmp_path / "text.h5").write_text("hello")
    assert_clean_error(run_cli("train", "--dictionary", tmp_path / "text.h5", "--out", tmp_path / "m"),
                       "text.h5", "not an HDF5 file")


def test_operating_threshold_is_the_best_cut():
    """best_threshold against a brute force over every cut between observed scores."""
    from apt_cnn_hpc.model.evaluate import best_threshold
    rng = np.random.default_rng(5)
    for trial in range(20):
        y = rng.random(300) < 0.4
        p = 1 / (1 + np.exp(-(rng.normal(0, 1.5, 300) + 2.5 * y + 3.0)))   # overlapping, near 1
        thr = best_threshold(p, y)
        acc = np.mean((p >= thr) == y)
        brute = max(np.mean((p >= t) == y) for t in np.concatenate([p, [1.0]]))
        assert acc == pytest.approx(brute), trial
    # separable: the cut lies between the classes, at the middle of the gap in logit space
    thr = best_threshold([0.9, 0.92, 0.999, 0.9999], [0, 0, 1, 1])
    assert 0.92 < thr < 0.999
    z = np.log(thr / (1 - thr))
    assert z == pytest.approx((np.log(0.92 / 0.08) + np.log(0.999 / 0.001)) / 2)
