"""Scan benchmark, measured in one run (prints JSON):
- wall time and cubes/s of `apt-cnn scan` on 1 and 2 ranks (strong-scaling efficiency);
- SDM stage: voxel-sum time (from the scan) vs naive per-cube maps (a timed sample, extrapolated);
- inference GFLOP/s next to this machine's SGEMM GFLOP/s measured in the same process;
- peak RSS per rank.
  python bench/scan.py            paper scale: 44 nm cube, ~2.8 M ions, ~100,000 cube positions
  python bench/scan.py --quick    20 nm cube (about a minute)
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def cnn_flops_per_map(model) -> float:
    """Multiply-adds x 2 of the convolution and dense layers."""
    flops = 0.0
    for layer in model.layers:
        kind = layer.__class__.__name__
        if kind == "Conv2D":
            _, h, w, c_out = layer.output.shape
            kh, kw, c_in, _ = layer.kernel.shape
            flops += 2.0 * h * w * c_out * kh * kw * c_in
        elif kind == "Dense":
            n_in, n_out = layer.kernel.shape
            flops += 2.0 * n_in * n_out
    return flops


def sgemm_gflops(n=2048, repeat=5) -> float:
    a = np.random.rand(n, n).astype(np.float32)
    b = np.random.rand(n, n).astype(np.float32)
    a @ b
    t = time.perf_counter()
    for _ in range(repeat):
        a @ b
    return 2.0 * n ** 3 * repeat / (time.perf_counter() - t) / 1e9


def inference_gflops(n_maps=2048):
    from apt_cnn_hpc.model.card import load_model
    from apt_cnn_hpc.model.predict import Predictor
    model = load_model(REPO / "models" / "default")
    pred = Predictor(model, batch=256)
    maps = np.random.default_rng(0).integers(0, 255, (n_maps, 150, 150), dtype=np.uint8)
    pred(maps[:256])
    t = time.perf_counter()
    pred(maps)
    rate = n_maps / (time.perf_counter() - t)
    return rate, rate * cnn_flops_per_map(model) / 1e9, cnn_flops_per_map(model)


def naive_seconds_per_cube(pos_path, rng_path, n_sample=20):
    from apt_cnn_hpc.io import read_ions, read_ranges
    from apt_cnn_hpc.sdm import PartnerIndex, SDMSettings, VoxelGrid, naive_cube_map
    s = SDMSettings()
    ions, t = read_ions(pos_path), read_ranges(rng_path)
    al = t.label(ions.mq) == t.index("Al")
    pos, ids = ions.xyz[al].astype(np.float64), np.flatnonzero(al)
    idx = PartnerIndex(pos, ids, s)
    grid = VoxelGrid.covering(pos, 1.0)
    rng = np.random.default_rng(1)
    cubes = [tuple(int(rng.integers(0, n - 4)) for n in grid.shape) for _ in range(n_sample)]
    naive_cube_map(idx, pos, ids, grid, cubes[0], 4)
    t0 = time.perf_counter()
    for c in cubes:
        naive_cube_map(idx, pos, ids, grid, c, 4)
    return (time.perf_counter() - t0) / n_sample


def run(cmd, env):
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--size", type=float, help="specimen cube side in nm (default 44, quick 20)")
    a = ap.parse_args()
    size = a.size or (20.0 if a.quick else 44.0)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", APT_CNN_NO_PROGRESS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    bindir = Path(sys.executable).parent
    cli = [sys.executable, "-m", "apt_cnn_hpc"]
    import h5py
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        t_gen = run(cli + ["specimen", "--out", str(d / "s"), "--size", *[str(size)] * 3, "--seed", "99"], env)
        res = {}
        for n in (1, 2):
            out = d / f"scan{n}.h5"
            wall = run([str(bindir / "mpiexec"), "-n", str(n)] + cli + [
                "scan", str(d / "s.pos"), "--range", str(d / "s.rrng"), "--out", str(out)], env)
            with h5py.File(out) as f:
                prov = json.loads(f["provenance"].attrs["json"])
                cubes = int(f.attrs["cubes_evaluated"])
                n_ions = int(f.attrs["n_ions"])
                positions = int(np.prod([s + 3 for s in f["voxels/probability_sum"].shape]))
            res[n] = {"wall_s": round(wall, 1), "cubes_evaluated": cubes,
                      "cubes_per_s": round(cubes / wall, 1),
                      "per_rank": [{k: round(v, 1) for k, v in t.items()} for t in prov["timings_per_rank"]]}
        naive = naive_seconds_per_cube(d / "s.pos", d / "s.rrng")
    maps_s_1 = res[1]["per_rank"][0]["maps_s"]
    rate, gflops, flops = inference_gflops()
    sgemm = sgemm_gflops()
    print(json.dumps({
        "specimen": {"size_nm": size, "ions": n_ions, "cube_positions": positions,
                     "generation_s": round(t_gen, 1)},
        "scan_1_rank": res[1], "scan_2_ranks": res[2],
        "strong_scaling_efficiency_2_ranks": round(res[1]["wall_s"] / (2 * res[2]["wall_s"]), 3),
        "sdm_stage": {"voxel_sum_s_1_rank": maps_s_1, "naive_s_per_cube": round(naive, 4),
                      "naive_s_extrapolated": round(naive * res[1]["cubes_evaluated"], 1),
                      "speedup": round(naive * res[1]["cubes_evaluated"] / maps_s_1, 1)},
        "inference": {"maps_per_s": round(rate, 1), "mflop_per_map": round(flops / 1e6, 1),
                      "gflops": round(gflops, 1), "sgemm_gflops": round(sgemm, 1),
                      "fraction_of_sgemm": round(gflops / sgemm, 3)},
    }, indent=2))


if __name__ == "__main__":
    main()
