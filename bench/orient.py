"""`apt-cnn orient` benchmark (issue 16's acceptance), measured in one run, prints JSON:

1. timing: a synthetic specimen with its <011> pole tilted 5 deg towards azimuth 200 deg and z
   stretched by 1.03 (`apt-cnn specimen` with detector overrides, as tests/test_orient.py), then
   `apt-cnn orient` and the 2-rank `apt-cnn scan` of the oriented output, each timed as a whole
   command (process start included) in the same run; their ratio (goal: orient <= 20 % of the
   scan); orient again with OpenBLAS on one thread (OPENBLAS_NUM_THREADS=1: the coarse search's
   small batched products slow down many times under two BLAS threads on a loaded machine);
   orient's phases timed in this process with orient's own functions; the scan's phases
   from its provenance. Sizes: the 22 nm cube and bench/scan.py's paper-scale 44 nm cube
   (seed 99, ~2.8 M ions); --full: bench/scan.py's 45 M-ion tip (cone), tilted the same way
   (about an hour and ~20 GB on 2 ranks: not run by default).
2. accuracy: per case (tilt, azimuth, z stretch, sigma_xy), the same specimen (same seed, so the
   same precipitates) generated untilted (tilt 0, z x 1) and tilted; `orient` -> `scan` ->
   `segment` -> `score` of the tilted one, `scan` -> `segment` -> `score` of the untilted one and
   (the control) of the tilted one without `orient`; the default method's (`ion_mlp`) per-ion F1
   over the oracle's for each, and the difference (acceptance: the oriented within 0.03x of the
   untilted). Pole and z-scale errors of `orient` against the generator's truth are reported too.

Truth of the oriented file: `orient` keeps every ion in the input's record order, so the
specimen's own PREFIX_truth.h5 (per-ion precipitate id by record index) scores it unchanged
(`apt-cnn score --truth`); the oracle is recomputed by `score` on the oriented positions. Only the
precipitate centres of the truth are in the input's frame (used by the ceiling and the detection
counts), so the bench also writes PREFIX_oriented_truth.h5 (same per-ion ids, centres carried
through the generator's reconstruction and orient's transform) and scores with that; the per-ion
F1 is checked to be the same with either file.

    .venv/bin/python bench/orient.py [--out out/bench-orient/orient.json]
    .venv/bin/python bench/orient.py --timing-sizes 22 --cases tilt5_az200_z1.03   # quick
    .venv/bin/python bench/orient.py --full [--fraction 0.1] --no-f1                # 45 M-ion tip
"""
import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from apt_cnn_hpc.parallel.launcher import local_env, mpiexec
import yaml

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TIMING_TILT = {"pole_tilt_deg": 5.0, "pole_tilt_azimuth_deg": 200.0, "z_scale": 1.03}
TIMING_SEED = 99                    # bench/scan.py's paper-scale specimen
# name -> (seed, detector overrides of the tilted specimen); seeds 7101.. are used nowhere else.
# sigma_xy: the lateral resolution blurs tilted planes along their normal (sigma_xy sin t): at
# the default 0.35 nm the planes fade past ~8 deg (docs/user_guide.md, orient), so the 10 and
# 15 deg cases use 0.15 nm, the sharpest the per-ion model was trained on (0.15-0.6 nm).
CASES = {
    "tilt2_az30_z0.97": (7101, {"pole_tilt_deg": 2.0, "pole_tilt_azimuth_deg": 30.0, "z_scale": 0.97,
                                "sigma_xy_nm": 0.35}),
    "tilt5_az200_z1.03": (7102, {"pole_tilt_deg": 5.0, "pole_tilt_azimuth_deg": 200.0, "z_scale": 1.03,
                                 "sigma_xy_nm": 0.35}),
    "tilt10_az120_z1.0": (7103, {"pole_tilt_deg": 10.0, "pole_tilt_azimuth_deg": 120.0, "z_scale": 1.0,
                                 "sigma_xy_nm": 0.15}),
    "tilt15_az250_z0.95": (7104, {"pole_tilt_deg": 15.0, "pole_tilt_azimuth_deg": 250.0, "z_scale": 0.95,
                                  "sigma_xy_nm": 0.15}),
}
TILT_KEYS = ("pole_tilt_deg", "pole_tilt_azimuth_deg", "z_scale")


def cli(*args, ranks=0, extra_env=None) -> float:
    """Run one `apt-cnn` stage (on `ranks` MPI ranks if > 0); its wall time in seconds."""
    cmd = [str(BIN / "apt-cnn"), *map(str, args)]
    if ranks:
        cmd = [mpiexec(), "-n", str(ranks)] + cmd
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=local_env(**(extra_env or {})), capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip().splitlines()[-3:]}")
    return wall


def specimen(prefix: Path, overrides: dict, seed: int) -> float:
    cfg = prefix.with_suffix(".yaml")
    cfg.write_text(yaml.safe_dump(overrides))
    return cli("specimen", "--config", cfg, "--out", prefix, "--seed", seed, "--overwrite")


def truth_pole(tilt_deg, azimuth_deg, z_scale, spacing_nm):
    """(unit normal of the planes in the data, their spacing in the data): tests/test_orient.py."""
    t, a = np.radians(tilt_deg), np.radians(azimuth_deg)
    n = np.array([np.sin(t) * np.cos(a), np.sin(t) * np.sin(a), np.cos(t) / z_scale])
    return n / np.linalg.norm(n), spacing_nm / np.linalg.norm(n)


def orient_errors(rec: dict, det: dict) -> dict:
    """`orient`'s pole and z-scale errors against the generator's truth."""
    pole, spacing = truth_pole(det.get("pole_tilt_deg", 0.0), det.get("pole_tilt_azimuth_deg", 0.0),
                               det.get("z_scale", 1.0), rec["spacing_expected_nm"])
    p = np.asarray(rec["pole_in_input"])
    err = float(np.degrees(np.arccos(np.clip(abs(p @ pole), 0, 1))))
    return {"tilt_deg": rec["tilt_deg"], "tilt_azimuth_deg": rec["tilt_azimuth_deg"], "z_scale": rec["z_scale"],
            "plane_signal": rec["plane_signal"], "pole_error_deg": err,
            "z_scale_error": rec["z_scale"] / (rec["spacing_expected_nm"] / spacing) - 1,
            "depth_scale_error": rec["depth_scale_input"] / det.get("z_scale", 1.0) - 1,
            "orient_seconds_own": rec["seconds"]}


def scan_phases(scan: Path) -> dict:
    import h5py
    with h5py.File(scan) as f:
        prov = json.loads(f["provenance"].attrs["json"])
        cubes = int(f.attrs["cubes_evaluated"])
    keys = ("read_exchange_s", "maps_s", "inference_s", "total_s", "peak_rss_mb")
    return {"cubes_evaluated": cubes,
            "per_rank": [{k: round(t[k], 1) for k in keys if k in t} for t in prov["timings_per_rank"]]}


def orient_phases(prefix: Path) -> dict:
    """orient's steps, timed in this process with orient's own functions (the same sequence as
    orient/run.py; find_pole's coarse search is timed alone, then the whole find_pole again, so
    refinement + spacing = find_pole - search)."""
    from apt_cnn_hpc.io import read_ions, read_ranges, write_pos
    from apt_cnn_hpc.orient.figure import central_z_sdm, plot_orient
    from apt_cnn_hpc.orient.pole import MAX_TILT_DEG, SPACING_022_NM, find_pole
    from apt_cnn_hpc.orient.search import search_pole
    t, out = time.perf_counter(), {}

    def lap(name):
        nonlocal t
        now = time.perf_counter()
        out[name] = round(now - t, 2)
        t = now

    ranges = read_ranges(f"{prefix}.rrng")
    ions = read_ions(f"{prefix}.pos")
    labels = ranges.label(ions.mq)
    ranged = labels >= 0
    lap("read_s")
    xyz = np.asarray(ions.xyz, np.float64)
    search_pole(xyz[ranged] - xyz.mean(0), SPACING_022_NM, MAX_TILT_DEG)
    lap("coarse_search_s")
    o = find_pole(ions.xyz, ranged)
    lap("find_pole_s")
    out["refine_and_spacing_s"] = round(out["find_pole_s"] - out["coarse_search_s"], 2)
    new = o.transform(ions.xyz)
    lap("transform_s")
    names = ranges.ion_names
    species = names[int(np.argmax(np.bincount(labels[ranged], minlength=len(names))))]
    before = central_z_sdm(ions.xyz, labels, names, o.centre_nm, species)
    after = central_z_sdm(new, labels, names, np.zeros(3), species)
    tmp = prefix.parent / "phases_tmp"
    plot_orient(f"{tmp}.png", o, before, after, "bench")
    lap("figure_s")
    write_pos(f"{tmp}.pos", new, ions.mq)
    lap("write_s")
    for suffix in (".png", ".pos"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    return out


def timing(size_nm, work: Path, ranks: int, cone: dict | None = None) -> dict:
    """Specimen (tilted), orient, 2-rank scan of the oriented output: wall times and ratio."""
    name = f"cone_{cone['ions'] / 1e6:.1f}M" if cone else f"cube{size_nm:g}"
    d = work / "timing" / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    over = {"detector": dict(TIMING_TILT)}
    if cone:
        over.update({"shape": "cone", "cone": cone["cone"]})
    else:
        over["size_nm"] = [size_nm] * 3
    t_gen = specimen(d / "s", over, TIMING_SEED)
    load = {"before": os.getloadavg()[0]}
    # orient as a user runs it, and again with OpenBLAS on one thread (the coarse search's batched
    # complex products are small; on a loaded machine two BLAS threads can make them many times slower)
    t_blas1 = cli("orient", d / "s.pos", "--range", d / "s.rrng", "--out", d / "o1.pos", "--overwrite",
                  extra_env={"OPENBLAS_NUM_THREADS": "1"})
    own_blas1 = json.loads((d / "o1.orient.json").read_text())["seconds"]
    t_orient = cli("orient", d / "s.pos", "--range", d / "s.rrng", "--out", d / "o.pos", "--overwrite")
    rec = json.loads((d / "o.orient.json").read_text())
    load["after_orient"] = os.getloadavg()[0]
    t_scan = cli("scan", d / "o.pos", "--range", d / "s.rrng", "--out", d / "scan.h5", "--overwrite", ranks=ranks)
    phases = scan_phases(d / "scan.h5")
    scan_own = max(r["total_s"] for r in phases["per_rank"])
    load["after_scan"] = os.getloadavg()[0]
    out = {"specimen": {"shape": "cone" if cone else "box", "size_nm": None if cone else size_nm,
                        **({"cone": cone["cone"]} if cone else {}), "seed": TIMING_SEED, "detector": TIMING_TILT,
                        "ions": rec["ions_input"], "generation_s": round(t_gen, 1)},
           "orient_s": round(t_orient, 2), "scan_s": round(t_scan, 2), "ranks": ranks,
           "ratio_orient_over_scan": round(t_orient / t_scan, 3),
           "orient_own_s": rec["seconds"], "scan_own_s": round(scan_own, 2),
           "ratio_own": round(rec["seconds"] / scan_own, 3),
           "orient_openblas_1_thread_s": round(t_blas1, 2), "orient_openblas_1_thread_own_s": own_blas1,
           "ratio_openblas_1_thread": round(t_blas1 / t_scan, 3),
           "load_average_1min": {k: round(v, 2) for k, v in load.items()},
           "orient_result": orient_errors(rec, TIMING_TILT),
           "orient_phases_in_process": None if cone and rec["ions_input"] > 1e7 else orient_phases(d / "s"),
           "scan_phases": phases}
    print(f"timing {name}: {out['specimen']['ions']} ions, orient {t_orient:.1f} s (OpenBLAS 1 thread "
          f"{t_blas1:.1f} s), scan {t_scan:.1f} s, ratio {out['ratio_orient_over_scan']:.3f}, load {load}",
          file=sys.stderr, flush=True)
    return out


def exponent(rows, key) -> float | None:
    """d log(time) / d log(ions) between the smallest and the largest specimen."""
    if len(rows) < 2:
        return None
    a, b = rows[0], rows[-1]
    return round(float(np.log(b[key] / a[key]) / np.log(b["specimen"]["ions"] / a["specimen"]["ions"])), 3)


def oriented_truth(truth_path: Path, orient_json: Path, out: Path):
    """The truth with its precipitate centres in the oriented frame (per-ion ids unchanged):
    centres through the generator's reconstruction (depth scale, curvature), then orient's
    transform; the recorded instrument is reset so that `score` does not distort them again."""
    import h5py
    from apt_cnn_hpc.contracts.truth import read_truth
    truth = read_truth(truth_path)
    rec = json.loads(orient_json.read_text())
    c = (truth.reconstructed_centres() - np.asarray(rec["centre_nm"])) @ np.asarray(rec["rotation"]).T
    c[:, 2] *= rec["z_scale"]
    shutil.copyfile(truth_path, out)
    with h5py.File(out, "r+") as f:
        f["precipitates/centre_nm"][...] = c
        inst = json.loads(f.attrs.get("instrument", "{}"))
        inst.update({"z_scale": 1.0, "curvature_radius_nm": 0.0, "pole_tilt_deg": 0.0})
        f.attrs["instrument"] = json.dumps(inst)
        f.attrs["oriented_by"] = f"bench/orient.py from {truth_path.name} and {orient_json.name}"


def pipeline(pos: Path, rng: Path, truth: Path, scan: Path, ranks: int) -> tuple[dict, dict]:
    """scan -> segment (default method) -> score; (score of the default method, seconds)."""
    t = {"scan": cli("scan", pos, "--range", rng, "--out", scan, "--overwrite", ranks=ranks)}
    t["segment"] = cli("segment", scan, "--method", "ion_mlp", "--set", "phase_sdm.pairs=[]")
    score = scan.with_suffix(".score.json")
    t["score"] = cli("score", scan, "--truth", truth, "--out", score, "--overwrite")
    s = json.loads(score.read_text())
    m = s["methods"][s["default"]]
    keep = ("f1", "precision", "recall", "oracle_f1", "f1_over_oracle", "ceiling_f1", "f1_over_ceiling",
            "volume_bias", "false_positive_fraction", "undetermined_fraction", "precipitates_inside", "detected")
    return {"method": s["default"], "ions": s["ions"], "ions_inside": s["ions_inside_precipitates"],
            **{k: m.get(k) for k in keep}}, {k: round(v, 1) for k, v in t.items()}


def accuracy_case(name: str, seed: int, det: dict, size_nm: float, work: Path, ranks: int,
                  control: bool) -> dict:
    d = work / "f1" / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    base = {"size_nm": [size_nm] * 3}
    flat = {k: v for k, v in det.items() if k not in TILT_KEYS}
    specimen(d / "u", {**base, "detector": flat}, seed)
    specimen(d / "t", {**base, "detector": det}, seed)
    res = {"case": name, "seed": seed, "size_nm": size_nm, "detector_tilted": det, "detector_untilted": flat}
    res["untilted"], sec_u = pipeline(d / "u.pos", d / "u.rrng", d / "u_truth.h5", d / "scan_u.h5", ranks)
    t_or = cli("orient", d / "t.pos", "--range", d / "t.rrng", "--out", d / "o.pos", "--overwrite")
    res["orient"] = orient_errors(json.loads((d / "o.orient.json").read_text()), det)
    oriented_truth(d / "t_truth.h5", d / "o.orient.json", d / "o_truth.h5")
    res["oriented"], sec_o = pipeline(d / "o.pos", d / "t.rrng", d / "o_truth.h5", d / "scan_o.h5", ranks)
    sec_o["orient"] = round(t_or, 1)
    # the per-ion F1 does not depend on which truth file's centres are used
    cli("score", d / "scan_o.h5", "--truth", d / "t_truth.h5", "--out", d / "scan_o.score_input_truth.json",
        "--overwrite")
    s2 = json.loads((d / "scan_o.score_input_truth.json").read_text())
    res["oriented"]["f1_with_input_truth"] = s2["methods"][s2["default"]]["f1"]
    if control:
        res["tilted_without_orient"], sec_t = pipeline(d / "t.pos", d / "t.rrng", d / "t_truth.h5",
                                                       d / "scan_t.h5", ranks)
    u, o = res["untilted"], res["oriented"]
    res["f1_over_oracle_difference"] = o["f1_over_oracle"] - u["f1_over_oracle"]
    res["f1_difference_over_untilted_oracle"] = (o["f1"] - u["f1"]) / u["oracle_f1"]
    res["within_0.03x"] = bool(res["f1_over_oracle_difference"] >= -0.03
                               and res["f1_difference_over_untilted_oracle"] >= -0.03)
    res["seconds"] = {"untilted": sec_u, "oriented": sec_o, **({"tilted_without_orient": sec_t} if control else {})}
    print(f"{name}: untilted {u['f1_over_oracle']:.3f}x, oriented {o['f1_over_oracle']:.3f}x "
          f"(diff {res['f1_over_oracle_difference']:+.3f}), pole error {res['orient']['pole_error_deg']:.3f} deg, "
          f"z scale error {100 * res['orient']['z_scale_error']:+.2f} %"
          + (f", without orient {res['tilted_without_orient']['f1_over_oracle']:.3f}x" if control else ""),
          file=sys.stderr, flush=True)
    return res


def code_state() -> dict:
    """The commit measured and the tracked files of the package that differ from it (the working
    tree is shared with other work)."""
    git = lambda *a: subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout  # noqa: E731
    return {"commit": git("rev-parse", "--short", "HEAD").strip(),
            "modified": [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]}


def load_scan_bench():
    spec = importlib.util.spec_from_file_location("bench_scan", REPO / "bench" / "scan.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timing-sizes", type=float, nargs="*", default=[22.0, 44.0],
                    help="cube sides (nm) of the timing specimens (44: bench/scan.py's paper-scale one)")
    ap.add_argument("--full", action="store_true", help="also time the 45 M-ion tip of bench/scan.py --full")
    ap.add_argument("--fraction", type=float, default=1.0, help="--full: share of the 45 M ions")
    ap.add_argument("--cases", nargs="*", choices=list(CASES), help="accuracy cases (default: all)")
    ap.add_argument("--no-f1", action="store_true", help="timing only")
    ap.add_argument("--no-control", action="store_true", help="skip the tilted specimen scanned without orient")
    ap.add_argument("--f1-size", type=float, default=22.0, help="cube side (nm) of the accuracy specimens")
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--work", default=str(REPO / "out" / "bench-orient"))
    ap.add_argument("--out", help="also write the JSON here")
    a = ap.parse_args()
    work = Path(a.work)
    t0 = time.time()
    rows = [timing(s, work, a.ranks) for s in sorted(a.timing_sizes)]
    report = {"bench": "orient", "code": code_state(), "ranks": a.ranks, "machine_cores": os.cpu_count(),
              "timing": {"goal": "orient <= 0.20 x the scan of its output", "runs": rows,
                         "exponent_orient_s_vs_ions": exponent(rows, "orient_s"),
                         "exponent_orient_openblas_1_thread_s_vs_ions": exponent(rows, "orient_openblas_1_thread_s"),
                         "exponent_scan_s_vs_ions": exponent(rows, "scan_s")}}
    if a.full:
        sc = load_scan_bench()
        n = sc.FULL_IONS * a.fraction
        cone = {"ions": n, "cone": {**sc.FULL_TIP, "height_nm": sc.tip_height(n, sc.DENSITY)}}
        report["timing"]["full"] = timing(None, work, a.ranks, cone)
    if not a.no_f1:
        cases = []
        for name in a.cases or list(CASES):
            seed, det = CASES[name]
            cases.append(accuracy_case(name, seed, det, a.f1_size, work, a.ranks, not a.no_control))
        report["accuracy"] = {"acceptance": "oriented F1/oracle within 0.03 of the untilted specimen's",
                              "method": "the default (ion_mlp), segment --method ion_mlp", "cases": cases,
                              "all_within_0.03x": all(c["within_0.03x"] for c in cases),
                              "max_pole_error_deg": max(c["orient"]["pole_error_deg"] for c in cases),
                              "max_abs_z_scale_error": max(abs(c["orient"]["z_scale_error"]) for c in cases)}
    report["code_at_end"] = code_state()
    report["seconds"] = round(time.time() - t0, 1)
    text = json.dumps(report, indent=1, default=float)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
