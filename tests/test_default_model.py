"""The shipped default model: what its card promises, and that it loads and classifies."""
import json

import numpy as np
import pytest

from apt_cnn_hpc.config import load_config
from apt_cnn_hpc.library.simulate import LibrarySpec, simulate_map
from apt_cnn_hpc.model.card import load_card, load_model
from apt_cnn_hpc.model.predict import Predictor
from apt_cnn_hpc.sdm import SDMSettings

from conftest import REPO

MODEL = REPO / "models" / "default"


def test_card_metrics():
    card = json.loads((MODEL / "model_card.json").read_text())
    w = card["training"]["positive_weight"]
    assert card["metrics"]["decision_threshold"] == w / (w + 1)
    assert card["metrics"]["simulated_test_auc"] >= 0.999        # pure FCC vs L1_2 maps
    assert card["metrics"]["heldout_specimen_auc"] >= 0.98
    assert card["parameters"] == 1666881
    assert (MODEL / "model.keras").stat().st_size <= 8 * 2 ** 20
    assert SDMSettings.from_dict(card["sdm"]) == SDMSettings.load()


@pytest.mark.xfail(strict=True, reason="known gap (issue 3): at its operating threshold 32/33, "
                   "chosen for the voxel rule, the default model calls ~5 % of pure FCC test maps L1_2")
def test_card_accuracy_at_operating_threshold():
    card = json.loads((MODEL / "model_card.json").read_text())
    assert card["metrics"]["simulated_test_accuracy"] >= 0.99


def test_default_model_separates_fresh_library_maps():
    """Maps from another seed than the training dictionary: pure FCC low, pure L1_2 high."""
    cfg = load_config("library")
    cfg["seed"] = 424242
    spec, s = LibrarySpec(cfg), SDMSettings.load()
    fcc = [simulate_map(spec, s, i)[0] for i in range(12)]
    l12 = [simulate_map(spec, s, spec.counts["fcc"] + i)[0] for i in range(12)]
    thr = load_card(MODEL)["metrics"]["decision_threshold"]
    p = Predictor(load_model(MODEL), batch=32)(np.asarray(fcc + l12))
    assert np.mean(p[:12] < thr) >= 11 / 12 and np.mean(p[12:] >= thr) >= 11 / 12, p
