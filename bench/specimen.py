"""Memory and time of `apt-cnn specimen`, in memory against `--stream`, at several depths of the
same cross-section, measured in one run (prints JSON): peak RSS of each process, ions, seconds, and
the growth of the peak per million ions (streamed: the slab's, independent of the specimen's size).

  python bench/specimen.py                      30 x 30 nm, 40 / 160 nm deep
  python bench/specimen.py --depths 100 400 1600 --side 40
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUN = """
import resource, sys
from apt_cnn_hpc.cli import main
rc = main(sys.argv[1:])
print("PEAK_MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
sys.exit(rc)
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--side", type=float, default=30.0)
    ap.add_argument("--depths", type=float, nargs="+", default=[40.0, 160.0])
    a = ap.parse_args()
    from apt_cnn_hpc.io import count_ions
    from apt_cnn_hpc.parallel.launcher import local_env
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for depth in a.depths:
            for mode in ("memory", "stream"):
                out = Path(d) / f"{mode}_{depth:.0f}"
                cmd = [sys.executable, "-c", RUN, "specimen", "--out", str(out), "--seed", "3",
                       "--size", str(a.side), str(a.side), str(depth)] + (["--stream"] if mode == "stream" else [])
                t = time.perf_counter()
                proc = subprocess.run(cmd, env=local_env(), capture_output=True, text=True, check=True)
                peak = float(proc.stdout.split("PEAK_MB")[-1])
                rows.append({"mode": mode, "depth_nm": depth, "ions": count_ions(f"{out}.pos"),
                             "seconds": round(time.perf_counter() - t, 1), "peak_rss_mb": round(peak)})
                print(json.dumps(rows[-1]), file=sys.stderr)
    growth = {}
    for mode in ("memory", "stream"):
        r = [x for x in rows if x["mode"] == mode]
        if len(r) >= 2:
            growth[mode] = round((r[-1]["peak_rss_mb"] - r[0]["peak_rss_mb"]) / ((r[-1]["ions"] - r[0]["ions"]) / 1e6), 1)
    print(json.dumps({"runs": rows, "peak_mb_per_million_ions": growth}, indent=1))


if __name__ == "__main__":
    main()
