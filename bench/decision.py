"""How `ion_mlp` turns calibrated per-ion probabilities into labels, measured on tuning specimens.

A calibrated probability thresholded at 0.5 minimises the number of wrong ions, not the per-ion
F1 nor the volume bias: where uncertain ions are mostly precipitate ions (the boundary shell of a
small precipitate), 0.5 labels too few. For calibrated probabilities the F1-optimal threshold is
F*/2 (Lipton, Elkan & Narayanaswamy 2014), and F(t) can be estimated from the probabilities alone:
TP(t) = sum of p over p > t, so F(t) ~ 2 TP(t) / (#(p > t) + sum of p). This script compares fixed
thresholds and that per-specimen plug-in on specimens drawn like the training ones
(model/ion_train.training_condition) with seeds of their own (9101..), apart from the training
(8001..), the calibration (9001..) and the benchmark (5001..), so the choice is not made on what
bench/accuracy.py measures; with --accuracy-work it also scores them on the benchmark's scans, to
show what the choice does there. Prints JSON.

    .venv/bin/python bench/decision.py [--specimens 40] [--work out/bench-decision]
                                       [--accuracy-work out/bench-accuracy]
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


def scores(p, truth, o, t) -> dict:
    """Labels p > t against the truth; o: the oracle's F1."""
    lab = p > t
    m = prf(lab, truth)
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


def tuning_rows(model, n: int, size_nm: float, work: Path) -> list:
    """Every rule on the tuning specimens (features cached in `work`)."""
    card, s1, s2 = load_ion_models(model)
    rows = []
    for seed in range(TUNING_SEED, TUNING_SEED + n):
        path = specimen_features(seed, card["solutes"], work, size_nm)
        if not path.exists():
            continue
        with np.load(path) as d:
            xyz, X1, truth, oracle = d["xyz"].astype(np.float64), d["X1"], d["truth"], d["oracle"]
            cond = json.loads(str(d["condition"]))
        p = apply_calibration(raw_probability(stage2_logits(s1, s2, xyz, X1)), card["calibration"])
        rows.append({"seed": seed, "ions": len(p), "inside": int(truth.sum()), "condition": cond,
                     **rules(p, truth, oracle)})
        log(str(seed), rows[-1])
    return rows


def benchmark_rows(accuracy_work: Path) -> list:
    """Every rule on the accuracy benchmark's scans (bench/accuracy.py --work): reported beside
    the tuning specimens, not used to choose. Ions the segmentation left undetermined are matrix."""
    from apt_cnn_hpc.contracts.segmentation import read_segmentation
    from apt_cnn_hpc.contracts.truth import read_truth
    from apt_cnn_hpc.segment.inputs import load_scan_data
    from apt_cnn_hpc.segment.score import oracle_labels
    rows = []
    for d in sorted(p for p in accuracy_work.iterdir() if (p / "scan_default.h5").is_file()):
        data = load_scan_data(d / "scan_default.h5")
        truth = read_truth(d / "s_truth.h5", len(data.xyz)).inside
        determined = read_segmentation(data.path).methods["ion_mlp"].ion_precipitate_id >= 0
        p = np.where(determined, data.stored_ion_probability[0], 0.0)
        rows.append({"condition": d.name, "ions": len(p), "inside": int(truth.sum()),
                     **rules(p, truth, oracle_labels(data.xyz, truth, data.grid))})
        log(d.name, rows[-1])
    return rows


def rules(p, truth, oracle) -> dict:
    o = prf(oracle, truth)["f1"]
    return {"fixed": {str(t): scores(p, truth, o, t) for t in FIXED},
            "plug_in": {str(lo): scores(p, truth, o, f1_threshold(p, lo)) for lo in PLUG_IN_FLOORS}}


def log(name, row):
    items = [*row["fixed"].items(), *((f"plug_in>={k}", v) for k, v in row["plug_in"].items())]
    print(f"{name}: " + " ".join(f"{k} {v['f1_over_oracle'] or 0:.3f}/{100 * (v['volume_bias'] or 0):+.0f}%"
                                 for k, v in items), file=sys.stderr, flush=True)


def summaries(rows) -> dict:
    return {f"{kind} {name}": summarise([r[kind][name] for r in rows], [r["inside"] > 0 for r in rows])
            for kind, names in (("fixed", FIXED), ("plug_in", PLUG_IN_FLOORS)) for name in map(str, names)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specimens", type=int, default=40)
    ap.add_argument("--size-nm", type=float, default=18.0)
    ap.add_argument("--model", default=str(DEFAULT_ION_MODEL))
    ap.add_argument("--work", default="out/bench-decision")
    ap.add_argument("--accuracy-work", help="also score the rules on bench/accuracy.py's scans in this directory")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out = {"bench": "decision", "model": args.model}
    if args.specimens:
        rows = tuning_rows(args.model, args.specimens, args.size_nm, work)
        out["tuning"] = {"specimens": len(rows), "summary": summaries(rows), "rows": rows}
    if args.accuracy_work:
        rows = benchmark_rows(Path(args.accuracy_work))
        out["benchmark"] = {"conditions": len(rows), "summary": summaries(rows), "rows": rows}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
