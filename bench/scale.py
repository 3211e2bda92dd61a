"""Scale-out benchmark of the scan (issue 15), measured in one run (prints JSON): per specimen and rank
count, each rank's peak RSS, ions with halo, tiles, CPU seconds, the seconds of its decomposed work
(cube maps + inference, per-ion pass) and the MB it sent per MPI operation; then the peak RSS per
rank as a share of the 1-rank peak, the imbalance max/mean of each rank's CPU seconds, and whether
the voxel map and the per-ion probabilities equal the 1-rank run's.

  python bench/scale.py                      section 60x60x12 nm, cone (12 deg), needle 20x20x200 nm
  python bench/scale.py --cases section --ranks 1 2 4 --budgets 3584 1000000
  .venv-mpio/bin/python bench/scale.py --cases section --writer serial mpio   (make test-mpio builds it)

Specimens come from `apt-cnn specimen` (seed 15). A budget of 1000000 MB means no tiling: each rank
streams its whole block, so its map window is the block's cross-section (the pre-budget behaviour).
CPU seconds, not wall seconds, measure the imbalance: this machine has 2 cores, so 4 ranks share them.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from apt_cnn_hpc.parallel.launcher import local_env, mpiexec

CASES = {
    "section": {"shape": "box", "size_nm": [60.0, 60.0, 12.0]},
    "cone": {"shape": "cone", "cone": {"top_radius_nm": 8.0, "half_angle_deg": 12.0, "height_nm": 60.0}},
    "needle": {"shape": "box", "size_nm": [20.0, 20.0, 200.0]},
}


def per_rank(path) -> tuple:
    import h5py
    with h5py.File(path) as f:
        prov = json.loads(f["provenance"].attrs["json"])
        ps = f["voxels/probability_sum"][:]
        ions = f["ions/l12_probability"][:] if "ions/l12_probability" in f else None
    rows = [{"peak_rss_mb": round(t["peak_rss_mb"]), "ions_with_halo": t["ions_with_halo"], "tiles": t["tiles"],
             "cpu_s": round(t["cpu_s"], 1), "maps_inference_s": round(t["maps_s"] + t["inference_s"], 1),
             "per_ion_s": round(t.get("per_ion_s", 0.0), 1), "total_s": round(t["total_s"], 1),
             "peak_rss_mb_after": t.get("peak_rss_mb_after"),
             "sent_mb": {op: round(n / 1e6, 3) for op, n in t["bytes_sent"].items()}}
            for t in prov["timings_per_rank"]]
    return rows, ps, ions, prov["decomposition"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--ranks", nargs="+", type=int, default=[1, 2, 4])
    ap.add_argument("--budgets", nargs="+", type=float, default=[3584.0, 1e6])
    ap.add_argument("--writer", nargs="+", default=["auto"], choices=["auto", "serial", "mpio"],
                    help="scan writers to compare (mpio needs h5py built with MPI)")
    a = ap.parse_args()
    env = local_env()
    cli = [sys.executable, "-m", "apt_cnn_hpc"]
    out = {}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        for case in a.cases:
            (d / f"{case}.yaml").write_text(json.dumps(CASES[case]))
            subprocess.run(cli + ["specimen", "--config", str(d / f"{case}.yaml"), "--out", str(d / case),
                                  "--seed", "15"], env=env, check=True, capture_output=True)
            res = {}
            for budget, writer in ((b, w) for b in a.budgets for w in a.writer):
                base = None
                for n in a.ranks:
                    scan = d / f"{case}_{n}_{budget:.0f}_{writer}.h5"
                    t = time.perf_counter()
                    subprocess.run([mpiexec(), "-n", str(n)] + cli + [
                        "scan", str(d / f"{case}.pos"), "--range", str(d / f"{case}.rrng"), "--out", str(scan),
                        "--memory-budget", str(budget), "--writer", writer], env=env, check=True, capture_output=True)
                    rows, ps, ions, blocks = per_rank(scan)
                    peak, cpu = max(r["peak_rss_mb"] for r in rows), [r["cpu_s"] for r in rows]
                    entry = {"wall_s": round(time.perf_counter() - t, 1), "per_rank": rows,
                             "blocks": [[b["lo"], b["hi"]] for b in blocks],
                             "peak_rss_mb": peak, "cpu_imbalance": round(max(cpu) / np.mean(cpu), 3)}
                    if base is None:
                        base = (peak, ps, ions)
                    else:
                        entry["peak_over_first"] = round(peak / base[0], 3)
                        entry["voxel_map_max_diff"] = float(np.abs(ps - base[1]).max())
                        entry["per_ion_equal"] = bool(ions is None or np.array_equal(ions, base[2]))
                    key = f"budget_{budget:.0f}_mb/writer_{writer}/ranks_{n}"
                    res[key] = entry
                    print(json.dumps({case: {key: entry}}), file=sys.stderr)
            out[case] = res
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
