"""SDM benchmark: kernel pair rate, voxel-sum scan vs naive per-cube scan, simulate maps/s.

Prints one JSON object. Ratios are taken in the same run (shared, noisy machines).
  python bench/sdm.py [--quick] [--size 20]
"""
import argparse
import json
import os
import platform
import time

import numpy as np

from apt_cnn_hpc.config import load_config
from apt_cnn_hpc.crystal.specimen import make_specimen
from apt_cnn_hpc.library.simulate import LibrarySpec, simulate_map
from apt_cnn_hpc.sdm import PartnerIndex, SDMSettings, VoxelGrid, cube_maps_by_layer, naive_cube_map


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer naive cubes and maps (< 1 min)")
    ap.add_argument("--size", type=float, default=20.0, help="specimen cube side in nm")
    args = ap.parse_args()
    s = SDMSettings.load()
    cfg = load_config("specimen")
    cfg.update({"size_nm": [args.size] * 3, "seed": 1})
    spec = make_specimen(cfg)
    al = spec["species_true"] == spec["species_names"].index("Al")
    pos = spec["xyz"][al].astype(np.float64)
    ids = np.flatnonzero(al)
    index = PartnerIndex(pos, ids, s)
    grid = VoxelGrid.covering(pos, s.voxel_nm)
    m = s.cube_voxels

    # warm up the JIT outside the timings
    naive_cube_map(index, pos[:2000], ids[:2000], grid, (0, 0, 0), m)

    t0 = time.perf_counter()
    _, z = index.histograms(pos, ids, np.zeros(len(pos), np.int64), 1, zx=False, z=True)
    t_kernel = time.perf_counter() - t0
    pairs = int(z.sum())

    t0 = time.perf_counter()
    n_cubes = 0
    sample = {}
    rng = np.random.default_rng(0)
    ox, oy, _ = grid.cube_origins(m, full=False)
    n_check = 5 if args.quick else 20
    for kz, maps in cube_maps_by_layer(index, pos, ids, grid, m, full=False):
        n_cubes += maps.shape[0] * maps.shape[1]
        if len(sample) < n_check and rng.random() < 0.3:
            a, b = rng.integers(maps.shape[0]), rng.integers(maps.shape[1])
            sample[(int(ox[a]), int(oy[b]), kz)] = maps[a, b].copy()
    t_voxel = time.perf_counter() - t0

    n_naive = 10 if args.quick else 60
    cubes = [(int(rng.choice(ox)), int(rng.choice(oy)), int(rng.choice(grid.cube_origins(m, False)[2])))
             for _ in range(n_naive)]
    t0 = time.perf_counter()
    for c in cubes:
        naive_cube_map(index, pos, ids, grid, c, m)
    t_naive_per_cube = (time.perf_counter() - t0) / n_naive
    equal = all(np.array_equal(naive_cube_map(index, pos, ids, grid, c, m), v) for c, v in sample.items())

    lib = LibrarySpec(load_config("library"))
    n_maps = 10 if args.quick else 100
    simulate_map(lib, s, 0)
    t0 = time.perf_counter()
    for i in range(n_maps):
        simulate_map(lib, s, (i * 997) % lib.total)
    t_maps = time.perf_counter() - t0

    print(json.dumps({
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "numba_threads": int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count()))},
        "specimen": {"size_nm": args.size, "al_ions": int(len(pos)), "voxels": list(grid.shape)},
        "kernel": {"pairs": pairs, "seconds": round(t_kernel, 3),
                   "pairs_per_s": round(pairs / t_kernel), "note": "one slot: a single thread"},
        "scan_sdm": {"cubes": n_cubes, "voxel_sum_seconds": round(t_voxel, 3),
                     "voxel_sum_cubes_per_s": round(n_cubes / t_voxel, 1),
                     "naive_seconds_per_cube": round(t_naive_per_cube, 5),
                     "naive_cubes_timed": n_naive,
                     "naive_seconds_extrapolated": round(t_naive_per_cube * n_cubes, 1),
                     "speedup_voxel_sum_vs_naive": round(t_naive_per_cube * n_cubes / t_voxel, 1),
                     "sampled_cubes_equal": bool(equal), "sampled_cubes": len(sample)},
        "simulate": {"maps": n_maps, "seconds": round(t_maps, 3), "maps_per_s": round(n_maps / t_maps, 2)},
    }, indent=2))


if __name__ == "__main__":
    main()
