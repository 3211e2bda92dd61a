"""Accuracy over instrument conditions: per ion, every method beside the oracle and the ceiling.

For each condition of the matrix a synthetic specimen (seeds never used in training) goes through
the real pipeline: `apt-cnn specimen`, `apt-cnn scan` with the default model and with the Table 1
model, `apt-cnn segment` (the paper's rule and its refinement on the Table 1 model's scan, every
other method on the default model's), `apt-cnn score`, plus the peer CompositionSpace when its venv exists
(bench/peers/setup_compositionspace.sh; skipped with a note otherwise). Per condition and method
it reports per-ion F1 with the oracle's (every 1 nm voxel labelled by the majority truth of its
ions) and the ceiling's (ions labelled by whether their reconstructed position lies in a true
precipitate), precision, recall, detection by size class, radius bias of one-to-one pairs,
volume bias (ions labelled / ions inside - 1), false-positive fraction (matrix ions labelled),
95 % intervals of F1 / oracle, volume and radius bias (precipitate cells resampled: how far the
figure of one specimen can move by which precipitates it holds),
and the calibration error of the default model's cube probabilities against each cube's true
L1_2 share. Prints JSON; --figures DIR writes the plots of docs/accuracy.md.

    .venv/bin/python bench/accuracy.py [--quick] [--out bench.json] [--figures docs/accuracy]
"""
import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from apt_cnn_hpc.parallel.launcher import local_env, mpiexec
import yaml

REPO = Path(__file__).resolve().parent.parent
PEER_VENV = REPO / "out" / "peers" / "compositionspace-venv"
BIN = Path(sys.executable).parent

ALLOY = {"size_nm": [22, 22, 22]}
FCC = {"size_nm": [16, 16, 16], "precipitates": {"volume_fraction": 0.0}}
# name -> (specimen overrides, seed, in --quick); seeds 5001.. are used nowhere else
CONDITIONS = {
    "reference": ({**ALLOY}, 5001, True),
    "eff0.8_sxy0.25": ({**ALLOY, "detector": {"efficiency": 0.8, "sigma_xy_nm": 0.25}}, 5002, False),
    "eff0.45_tilt1_curved": ({**ALLOY, "detector": {"efficiency": 0.45, "pole_tilt_deg": 1.0,
                                                    "pole_tilt_azimuth_deg": 210,
                                                    "curvature_radius_nm": 1000}}, 5004, False),
    "tilt2_zscale0.97": ({**ALLOY, "detector": {"pole_tilt_deg": 2.0, "pole_tilt_azimuth_deg": 75,
                                                "z_scale": 0.97}}, 5005, False),
    "zscale1.03_bg2pct_mag1.1": ({**ALLOY, "detector": {"z_scale": 1.03, "background_fraction": 0.02,
                                                        "interface_magnification": 1.1}}, 5006, False),
    "sxy0.5_sz0.04_tilt0.5_curved": ({**ALLOY, "detector": {"sigma_xy_nm": 0.5, "sigma_z_nm": 0.04,
                                                            "pole_tilt_deg": 0.5, "pole_tilt_azimuth_deg": 30,
                                                            "curvature_radius_nm": 2000}}, 5007, False),
    "dense_gap0.5": ({**ALLOY, "precipitates": {"volume_fraction": 0.25, "radius_mean_nm": 2.0,
                                                "radius_sd_nm": 0.6, "min_gap_nm": 0.5}}, 5008, False),
    "small": ({**ALLOY, "precipitates": {"volume_fraction": 0.04, "radius_mean_nm": 1.1, "radius_sd_nm": 0.35,
                                         "radius_min_nm": 0.5, "radius_max_nm": 1.6}}, 5009, False),
    "same_composition": ({**ALLOY, "same_composition": True}, 5010, False),
    "matrix_Al4Li1Mg": ({**ALLOY, "overall_composition_at_pct": {"Li": 4.0, "Mg": 1.0}}, 5011, False),
    # outside every range the model was trained at: lateral resolution and tilt
    "untrained_sxy0.7_tilt3": ({**ALLOY, "detector": {"sigma_xy_nm": 0.7, "pole_tilt_deg": 3.0,
                                                      "pole_tilt_azimuth_deg": 150}}, 5012, False),
    "poorest_eff0.35_sz0.05": ({**ALLOY, "detector": {"efficiency": 0.35, "sigma_z_nm": 0.05}}, 5013, False),
    "poorest_eff0.35_sz0.06": ({**ALLOY, "detector": {"efficiency": 0.35, "sigma_z_nm": 0.06}}, 5014, False),
    "fcc_eff0.35": ({**FCC, "detector": {"efficiency": 0.35}}, 5015, False),
    "fcc_eff0.55": ({**FCC}, 5016, False),
    "fcc_eff0.8": ({**FCC, "detector": {"efficiency": 0.8}}, 5017, False),
    "fcc_sz0.08": ({**FCC, "detector": {"sigma_z_nm": 0.08}}, 5018, True),
}


# the paper's rule and its refinement read the paper's kind of cube probabilities: they run on the
# Table 1 model's scan (the paper's method exactly); every other method on the default model's
DEFAULT_MODEL_METHODS = ("cnn_deconvolved", "isocomposition", "order_parameter", "ion_mlp")
TABLE1_MODEL_METHODS = ("paper", "cnn_refined")


def cli(*args, ranks=0):
    cmd = [str(BIN / "apt-cnn"), *map(str, args)]
    if ranks:
        cmd = [mpiexec(), "-n", str(ranks)] + cmd
    proc = subprocess.run(cmd, env=local_env(), capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return proc.stdout


def cube_calibration(scan, prefix) -> dict:
    """ECE of the scan's calibrated cube probabilities against each cube's true L1_2 share of
    reference ions (the quantity the model is trained to predict)."""
    from apt_cnn_hpc.contracts.scan_file import read_cubes, read_voxel_map
    from apt_cnn_hpc.contracts.truth import read_truth
    from apt_cnn_hpc.io import read_ions, read_ranges
    from apt_cnn_hpc.model.calibration import expected_calibration_error
    from apt_cnn_hpc.sdm import SDMSettings, cube_counts
    vm, cubes = read_voxel_map(scan), read_cubes(scan)
    settings = SDMSettings.from_dict(vm.provenance["config"]["sdm"])
    ions, ranges = read_ions(f"{prefix}.pos"), read_ranges(f"{prefix}.rrng")
    ref = ranges.label(ions.mq) == ranges.index(settings.pair[0])
    inside = read_truth(f"{prefix}_truth.h5", len(ions)).inside
    vox = vm.grid.index(ions.xyz[ref].astype(np.float64))
    m = settings.cube_voxels
    n = cube_counts(vm.grid, vox, m, full=True)
    k = cube_counts(vm.grid, vox, m, full=True, weights=inside[ref])
    idx = np.rint((cubes.origin_nm - np.asarray(vm.grid.origin_nm)) / vm.grid.voxel_nm).astype(int) + (m - 1)
    share = k[tuple(idx.T)] / np.maximum(n[tuple(idx.T)], 1)
    ece, rows = expected_calibration_error(cubes.probability, share)
    return {"cube_ece": ece, "cubes": len(share), "reliability": rows,
            "mean_probability": float(cubes.probability.mean()), "mean_share": float(share.mean())}


def peer_ids(prefix, workdir) -> tuple[np.ndarray, float]:
    """CompositionSpace (3 GMM components on 1.5 nm voxels, its example's DBSCAN) as a per-ion
    result: its precipitate phase per ion, its DBSCAN clusters as precipitates (phase ions in no
    cluster share one more id, so they count as L1_2 ions)."""
    out = workdir / "compositionspace.npz"
    t = time.time()
    subprocess.run([str(PEER_VENV / "bin" / "python"), str(REPO / "bench" / "peers" / "compositionspace_run.py"),
                    "--pos", f"{prefix}.pos", "--range", f"{prefix}.rrng", "--out", str(out), "--voxel-nm", "1.5",
                    "--components", "3", "--workdir", str(workdir / "cs")], check=True, capture_output=True, env=local_env())
    lab = np.load(out)
    phase, cluster = lab["ion_phase"], lab["ion_cluster"]
    return np.where(phase == 1, np.where(cluster > 0, cluster, cluster.max(initial=0) + 1), 0).astype(np.int32), \
        time.time() - t


def scores(scans: dict, prefix, workdir, peer: bool) -> dict:
    """Every method of every scan (and the peer) scored against the truth on one loaded data set."""
    from apt_cnn_hpc.contracts.segmentation import read_segmentation
    from apt_cnn_hpc.contracts.truth import read_truth
    from apt_cnn_hpc.segment.components import element_table
    from apt_cnn_hpc.segment.inputs import load_scan_data
    from apt_cnn_hpc.segment.score import reference_labels, score_method
    from apt_cnn_hpc.segment.tables import precipitate_table
    data = load_scan_data(scans["default"])
    truth = read_truth(f"{prefix}_truth.h5", len(data.xyz))
    ref = reference_labels(data.xyz, truth, data.grid)
    out = {"oracle": ref["oracle"], "ceiling": ref["ceiling"], "ions": len(data.xyz),
           "ions_inside_precipitates": int(truth.inside.sum()), "methods": {}}
    for model, scan in scans.items():
        seg = read_segmentation(scan)
        for name, rec in seg.methods.items():
            out["methods"][name] = score_method(rec.ion_precipitate_id, rec.table, truth, ref, data.xyz,
                                               rec.ion_probability)
    if peer:
        try:
            ids, seconds = peer_ids(prefix, workdir)
            _, atoms = element_table(data.ranges.ion_names, data.ranges.composition)
            m = score_method(ids, precipitate_table(ids, data, atoms), truth, ref, data.xyz)
            out["methods"]["compositionspace"] = {**m, "seconds": seconds}
        except subprocess.CalledProcessError as exc:
            out["compositionspace_error"] = (exc.stderr or b"").decode()[-300:]
    return out


def run_condition(name, overrides, seed, work: Path, ranks: int, peer: bool, reuse: bool = False) -> dict:
    """One condition through the pipeline. `reuse`: keep the specimen and scans of an earlier run
    made from the same specimen config (segment and score again, e.g. after a change of a method)."""
    from apt_cnn_hpc.config import load_config, merge
    d = work / name
    cfg = merge(load_config("specimen"), overrides)
    cfg["seed"] = seed
    scans = {model: d / f"scan_{model}.h5" for model in ("default", "table1")}   # maps made once
    reuse = reuse and all(p.is_file() for p in scans.values()) and (d / "specimen.yaml").is_file() \
        and yaml.safe_load((d / "specimen.yaml").read_text()) == cfg
    t = {"start": time.time()}
    if not reuse:
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        (d / "specimen.yaml").write_text(yaml.safe_dump(cfg))
        cli("specimen", "--config", d / "specimen.yaml", "--out", d / "s")
    t["specimen"] = time.time()
    if not reuse:
        cli("scan", d / "s.pos", "--range", d / "s.rrng", "--model", *(REPO / "models" / m for m in scans),
            "--out", *scans.values(), ranks=ranks)
    t["scans"] = time.time()
    no_sdm = ("--set", "phase_sdm.pairs=[]", "--overwrite")   # the phase SDMs are no measure of accuracy
    cli("segment", scans["default"], "--method", *DEFAULT_MODEL_METHODS, *no_sdm)
    cli("segment", scans["table1"], "--method", *TABLE1_MODEL_METHODS, "--set", "default=paper", *no_sdm)
    t["segment"] = time.time()
    result = {"condition": name, "seed": seed, "specimen": overrides, "scans_reused": reuse,
              **scores(scans, d / "s", d, peer)}
    t["score"] = time.time()
    result["calibration_default_model"] = cube_calibration(scans["default"], d / "s")
    result["calibration_table1_model"] = cube_calibration(scans["table1"], d / "s")
    t["end"] = time.time()
    result["seconds"] = {"specimen": t["specimen"] - t["start"], "scans": t["scans"] - t["specimen"],
                         "segment": t["segment"] - t["scans"], "total": t["end"] - t["start"]}
    return result


def markdown(results: list) -> str:
    """Tables for docs/accuracy.md: one row per condition and method."""
    lines = ["| condition | method | F1 / oracle | F1 / ceiling | P | R | volume bias | FCC ions called L1_2 | "
             "detected r >= 1.5 | detected r 1-1.5 | found alone | radius bias | per-ion ECE |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda v, pct=False: "-" if v is None else (f"{100 * v:+.1f} %" if pct else f"{v:.3f}")  # noqa: E731

    def ci(m, key, pct=False):
        """The figure with its 95 % interval over resampled precipitate cells (segment/score.py)."""
        iv = m.get(f"{key}_ci95")
        if iv is None:
            return fmt(m[key], pct)
        return f"{fmt(m[key], pct)} [{fmt(iv[0], pct)}, {fmt(iv[1], pct)}]".replace(" %", "") + (" %" if pct else "")
    for r in results:
        for name, m in r["methods"].items():
            lines.append(f"| {r['condition']} | {name} | {ci(m, 'f1_over_oracle')} | {fmt(m['f1_over_ceiling'])} | "
                         f"{fmt(m['precision'])} | {fmt(m['recall'])} | {ci(m, 'volume_bias', True)} | "
                         f"{fmt(m['false_positive_fraction'], True)} | {fmt(m['detection_rate_r_ge_1.5nm'])} | "
                         f"{fmt(m['detection_rate_r_1.0_1.5nm'])} | {fmt(m['found_alone_rate'])} | "
                         f"{ci(m, 'radius_bias', True)} | {fmt(m.get('ion_ece'))} |")
    lines += ["", "| condition | oracle F1 | ceiling F1 | cube ECE (default model) | cube ECE (Table 1 model) | "
              "mean cube p / share (default) | seconds |", "|---|---|---|---|---|---|---|"]
    for r in results:
        c, o = r["calibration_default_model"], r["calibration_table1_model"]
        lines.append(f"| {r['condition']} | {r['oracle']['f1']:.3f} | {r['ceiling']['f1']:.3f} | {c['cube_ece']:.4f} | "
                     f"{o['cube_ece']:.4f} | {c['mean_probability']:.4f} / {c['mean_share']:.4f} | "
                     f"{r['seconds']['total']:.0f} |")
    return "\n".join(lines)


def figures(results: list, out: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from apt_cnn_hpc.report.figures import colour
    from apt_cnn_hpc.segment.methods import REGISTRY
    out.mkdir(parents=True, exist_ok=True)
    names = [r["condition"] for r in results]
    methods = sorted({m for r in results for m in r["methods"]})
    for key, label, fname in (("f1_over_oracle", "per-ion F1 / oracle F1", "f1_over_oracle.png"),
                              ("volume_bias", "volume of the found phase / truth - 1", "volume_bias.png"),
                              ("false_positive_fraction", "matrix ions called L1_2", "false_positives.png")):
        fig, ax = plt.subplots(figsize=(12, 4.5))
        w = 0.8 / len(methods)
        for j, m in enumerate(methods):
            v = [r["methods"].get(m, {}).get(key) for r in results]
            ax.bar(np.arange(len(names)) + j * w, [np.nan if x is None else x for x in v], w, label=m,
                   color=colour(m) if m in REGISTRY else None)
        ax.set_xticks(np.arange(len(names)) + 0.4)
        ax.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
        ax.set_ylabel(label)
        if key == "false_positive_fraction":
            ax.set_yscale("symlog", linthresh=1e-3)
        ax.axhline(0 if key != "f1_over_oracle" else 1, color="k", lw=0.6)
        ax.legend(fontsize=7, ncol=4)
        fig.tight_layout()
        fig.savefig(out / fname, dpi=100)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    for r in results:
        rows = r["calibration_default_model"]["reliability"]
        ax.plot([x["mean_probability"] for x in rows], [x["mean_outcome"] for x in rows], "o-", ms=2, lw=0.8,
                label=f"{r['condition']} ({r['calibration_default_model']['cube_ece']:.3f})")
    ax.set_xlabel("calibrated cube probability (bin mean)")
    ax.set_ylabel("true L1_2 share of the cube's references")
    ax.legend(fontsize=5.5)
    fig.tight_layout()
    fig.savefig(out / "reliability.png", dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the CI subset of conditions")
    ap.add_argument("--conditions", nargs="+", choices=list(CONDITIONS), help="only these conditions")
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--work", default=str(REPO / "out" / "bench-accuracy"))
    ap.add_argument("--out", help="also write the JSON here")
    ap.add_argument("--figures", help="write the PNG figures into this directory")
    ap.add_argument("--markdown", help="write the tables of docs/accuracy.md into this file")
    ap.add_argument("--no-peer", action="store_true", help="skip CompositionSpace")
    ap.add_argument("--reuse-scans", action="store_true",
                    help="keep each condition's specimen and scans from an earlier run of the same specimen config "
                         "(segment and score again)")
    args = ap.parse_args()
    names = args.conditions or [n for n, (_, _, q) in CONDITIONS.items() if q or not args.quick]
    peer = not args.no_peer and (PEER_VENV / "bin" / "python").is_file()
    work = Path(args.work)
    t0 = time.time()
    results = []
    for name in names:
        over, seed, _ = CONDITIONS[name]
        results.append(run_condition(name, over, seed, work, args.ranks, peer, args.reuse_scans))
        m = results[-1]["methods"]
        print(f"{name} ({results[-1]['seconds']['total']:.0f} s): " + ", ".join(
            f"{k} {v['f1_over_oracle'] or 0:.2f}x vol {100 * (v['volume_bias'] or 0):+.0f}% "
            f"fp {100 * (v['false_positive_fraction'] or 0):.2f}%" for k, v in m.items()), file=sys.stderr, flush=True)
    report = {"bench": "accuracy", "quick": args.quick, "ranks": args.ranks, "seconds": time.time() - t0,
              "peer": "compositionspace 0.1.4 (3 GMM components, 1.5 nm voxels)" if peer else
              "CompositionSpace not installed (bash bench/peers/setup_compositionspace.sh): skipped",
              "conditions": results}
    text = json.dumps(report, indent=1, default=float)
    if args.out:
        Path(args.out).write_text(text)
    if args.figures:
        figures(results, Path(args.figures))
    if args.markdown:
        Path(args.markdown).write_text(markdown(results))
    print(text)


if __name__ == "__main__":
    main()
