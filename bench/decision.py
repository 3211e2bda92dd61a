"""How `ion_mlp` turns calibrated per-ion probabilities into labels, measured on tuning specimens.

A calibrated probability thresholded at 0.5 minimises the number of wrong ions, not the per-ion
F1 nor the volume bias: where uncertain ions are mostly precipitate ions (the boundary shell of a
small precipitate), 0.5 labels too few. For calibrated probabilities the F1-optimal threshold is
F*/2 (Lipton, Elkan & Narayanaswamy 2014), and F(t) can be estimated from the probabilities alone:
TP(t) = sum of p over p > t, so F(t) ~ 2 TP(t) / (#(p > t) + sum of p). This script compares fixed
thresholds and that per-specimen plug-in on specimens drawn like the training ones
(model/ion_train.training_condition) with seeds of their own (9101..), apart from the training
(8001..), the calibration (9001..) and the benchmark (5001..), so the choice is not made on what
bench/accuracy.py measures. Prints JSON.

    .venv/bin/python bench/decision.py [--specimens 40] [--work out/bench-decision]
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

from apt_cnn_hpc.contracts.ion_model import DEFAULT_ION_MODEL, load_ion_models
from apt_cnn_hpc.model.calibration import apply_calibration
from apt_cnn_hpc.model.ion_mlp import raw_probability, stage2_logits
from apt_cnn_hpc.model.ion_train import specimen_features
from apt_cnn_hpc.segment.decision import f1_threshold
from apt_cnn_hpc.segment.score import prf

TUNING_SEED = 9101
FIXED = (0.3, 0.35, 0.4, 0.45, 0.5)
PLUG_IN_FLOORS = (0.0, 0.35, 0.4, 0.45)    # the plug-in bounded below: pure FCC has no F1 to find


def scores(p, truth, oracle, t) -> dict:
    lab = p > t
    m = prf(lab, truth)
    o = prf(oracle, truth)["f1"]
    return {"f1_over_oracle": m["f1"] / o if o else None, "f1": m["f1"],
            "volume_bias": float(lab.sum() / truth.sum() - 1) if truth.any() else None,
            "fp_fraction": float(lab[~truth].mean()) if (~truth).any() else None, "threshold": float(t)}


def summarise(results: list, alloy: list) -> dict:
    """Over specimens: F1 / oracle (mean, min) and volume bias of the alloys, FP of pure FCC."""
    f = np.array([m["f1_over_oracle"] for m, a in zip(results, alloy) if a and m["f1_over_oracle"]])
    v = np.array([m["volume_bias"] for m, a in zip(results, alloy) if a])
    fcc = [m["fp_fraction"] for m, a in zip(results, alloy) if not a]
    return {"f1_over_oracle_mean": float(f.mean()), "f1_over_oracle_min": float(f.min()),
            "volume_bias_mean": float(v.mean()), "abs_volume_bias_median": float(np.median(np.abs(v))),
            "fcc_fp_max": max(fcc, default=None),
            "alloy_fp_mean": float(np.mean([m["fp_fraction"] for m, a in zip(results, alloy) if a]))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specimens", type=int, default=40)
    ap.add_argument("--size-nm", type=float, default=18.0)
    ap.add_argument("--model", default=str(DEFAULT_ION_MODEL))
    ap.add_argument("--work", default="out/bench-decision")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    card, s1, s2 = load_ion_models(args.model)
    rows = []
    for seed in range(TUNING_SEED, TUNING_SEED + args.specimens):
        path = specimen_features(seed, card["solutes"], work, args.size_nm)
        if not path.exists():
            continue
        with np.load(path) as d:
            xyz, X1, truth, oracle = d["xyz"].astype(np.float64), d["X1"], d["truth"], d["oracle"]
            cond = json.loads(str(d["condition"]))
        p = apply_calibration(raw_probability(stage2_logits(s1, s2, xyz, X1)), card["calibration"])
        row = {"seed": seed, "ions": len(p), "inside": int(truth.sum()),
               "volume_fraction": cond["precipitates"]["volume_fraction"],
               "radius_mean_nm": cond["precipitates"]["radius_mean_nm"], "same_composition": cond["same_composition"],
               "efficiency": cond["detector"]["efficiency"], "sigma_z_nm": cond["detector"]["sigma_z_nm"],
               "fixed": {str(t): scores(p, truth, oracle, t) for t in FIXED},
               "plug_in": {str(lo): scores(p, truth, oracle, f1_threshold(p, lo)) for lo in PLUG_IN_FLOORS}}
        rows.append(row)
        rules = [*row["fixed"].items(), *((f"plug_in>={k}", v) for k, v in row["plug_in"].items())]
        print(f"{seed}: " + " ".join(f"{k} {v['f1_over_oracle'] or 0:.3f}/{100 * (v['volume_bias'] or 0):+.0f}%"
                                     for k, v in rules), file=sys.stderr, flush=True)
    summary = {f"{kind} {name}": summarise([r[kind][name] for r in rows], [r["inside"] > 0 for r in rows])
               for kind, names in (("fixed", FIXED), ("plug_in", PLUG_IN_FLOORS)) for name in map(str, names)}
    print(json.dumps({"bench": "decision", "model": args.model, "specimens": len(rows), "summary": summary,
                      "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
