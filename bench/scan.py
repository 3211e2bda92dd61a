"""Scan benchmark, measured in one run (prints JSON):
- wall time and cubes/s of `apt-cnn scan` on 1 and 2 ranks (strong-scaling efficiency);
- SDM stage: voxel-sum time (from the scan) vs naive per-cube maps (a timed sample, extrapolated);
- inference GFLOP/s next to this machine's SGEMM GFLOP/s measured in the same process;
- peak RSS per rank.
  python bench/scan.py            paper scale: 44 nm cube, ~2.8 M ions, ~100,000 cube positions
  python bench/scan.py --quick    20 nm cube (about a minute)
  python bench/scan.py --full     the paper's whole 45 M-ion size as a tip (cone): generation,
                                  parallel read, decomposition and halo exchange and every cube
                                  map on 2 ranks, inference on a sample of the maps, peak RSS
                                  per rank; then a scaling model for 45 M ions on 2-256 ranks.
                                  --fraction F scales the ion count (a quick trial of the mode).
"""
import argparse
import json
import os
import resource
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


def gemm_gflops(dtype: str, n=2048, repeat=5) -> float:
    """Dense matrix product n^3 in TensorFlow (oneDNN) at this dtype: the machine's practical peak
    for the arithmetic the CNN uses (numpy's float32 product is reported beside it)."""
    import tensorflow as tf
    a = tf.random.uniform((n, n), dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)
    mm = tf.function(lambda x, y: tf.linalg.matmul(x, y))
    mm(a, b).numpy()
    t = time.perf_counter()
    for _ in range(repeat):
        mm(a, b).numpy()
    return 2.0 * n ** 3 * repeat / (time.perf_counter() - t) / 1e9


def numpy_sgemm_gflops(n=2048, repeat=5) -> float:
    a = np.random.rand(n, n).astype(np.float32)
    b = np.random.rand(n, n).astype(np.float32)
    a @ b
    t = time.perf_counter()
    for _ in range(repeat):
        a @ b
    return 2.0 * n ** 3 * repeat / (time.perf_counter() - t) / 1e9


def inference_rates(n_maps=2048) -> dict:
    """maps/s of the scan's Predictor (float32 and bfloat16) and of the XLA-compiled float32
    function it replaced, on the same maps; and the largest bfloat16 - float32 difference."""
    import tensorflow as tf

    from apt_cnn_hpc.contracts.model_dir import load_model
    from apt_cnn_hpc.model.cnn import prepare
    from apt_cnn_hpc.model.predict import Predictor
    model = load_model(REPO / "models" / "default")
    maps = np.random.default_rng(0).integers(0, 255, (n_maps, 150, 150), dtype=np.uint8)
    xla = tf.function(lambda x: model(x, training=False), jit_compile=True)
    runs = {"float32": Predictor(model, 256), "bfloat16": Predictor(model, 256, "bfloat16"),
            "float32_xla": lambda m: np.concatenate([np.asarray(xla(prepare(m[i:i + 256])))[:, 0]
                                                     for i in range(0, len(m), 256)])}
    out, probs = {}, {}
    for name, fn in runs.items():
        fn(maps[:256])
        t = time.perf_counter()
        probs[name] = fn(maps)
        out[name] = n_maps / (time.perf_counter() - t)
    out["bfloat16_max_abs_diff"] = float(np.abs(probs["bfloat16"] - probs["float32"]).max())
    return out, cnn_flops_per_map(model)


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


FULL_IONS = 45e6
DENSITY = 1_199_230 / (30 * 30 * 40)   # ions per nm^3 of the default specimen
# the tip of --full: apex radius 20 nm, 3 degree half angle; height chosen for the ion count
FULL_TIP = {"top_radius_nm": 20.0, "half_angle_deg": 3.0}


def tip_height(n_ions: float, density: float) -> float:
    """Height (nm) of the FULL_TIP cone holding n_ions at `density` ions/nm^3."""
    r0, t = FULL_TIP["top_radius_nm"], np.tan(np.radians(FULL_TIP["half_angle_deg"]))
    volume = n_ions / density
    r1 = (r0 ** 3 + 3 * t * volume / np.pi) ** (1 / 3)
    return float((r1 - r0) / t)


def worker(pos, rng_path, sample: int):
    """One rank of --full: the scan's own read/decompose/exchange and cube maps over the whole
    slab, inference on an evenly spread sample of the maps; rank 0 prints the ranks' timings."""
    from apt_cnn_hpc.io import read_ranges
    from apt_cnn_hpc.contracts.model_dir import load_model
    from apt_cnn_hpc.model.predict import Predictor
    from apt_cnn_hpc.parallel import comm_world
    from apt_cnn_hpc.parallel.mpi import configure_tensorflow
    from apt_cnn_hpc.scan.budget import current_rss_mb, tile_voxels
    from apt_cnn_hpc.scan.decompose import distribute
    from apt_cnn_hpc.scan.run import DEFAULT_MODEL, cube_inputs, scan_settings, selected_maps
    comm = comm_world()
    rank = comm.Get_rank()
    cfg, settings = scan_settings(None)
    configure_tensorflow(comm)
    pred = Predictor(load_model(DEFAULT_MODEL), batch=cfg["batch"])
    pred(np.zeros((1, settings.map_bins, settings.map_bins), np.uint8))    # compile outside the timing
    rss_base = current_rss_mb()
    t0 = time.perf_counter()
    ranges = read_ranges(rng_path)
    ref = ranges.index(settings.pair[0])
    dist = distribute(comm, pos, False, settings, lambda mq: ranges.label(mq) == ref, cfg["min_reference"],
                      decomposition=cfg["decomposition"])
    local, mine = dist.local, dist.blocks[rank]
    t1 = time.perf_counter()
    index, ref_pos, ref_ids = cube_inputs(local.xyz.astype(np.float64), ranges.label(local.mq), ranges, settings)
    t_index = time.perf_counter() - t1
    rss_index = current_rss_mb()
    m, min_ref = settings.cube_voxels, max(cfg["min_reference"], 1)
    tiles = mine.tiles(tile_voxels(cfg["memory_budget_mb"], len(local), dist.block_ref.size, 3, cfg["batch"],
                                   settings.map_bins, m), m)
    todo = {t: list(range(mine.lo[2], mine.hi[2])) for t in tiles}
    n_sel = int((dist.block_ref >= min_ref).sum())
    every = max(1, n_sel // sample)
    kept, n_maps, t1 = [], 0, time.perf_counter()
    for _, _, sel, maps in selected_maps(index, ref_pos, ref_ids, dist.grid, m, todo, dist.block_ref, mine.lo,
                                         min_ref):
        kept.append(maps[(n_maps + np.arange(len(sel))) % every == 0])
        n_maps += len(sel)
    t_maps = time.perf_counter() - t1
    sample_maps = np.concatenate(kept)[:sample]
    comm.Barrier()
    t1 = time.perf_counter()
    pred(sample_maps)
    t_inf = time.perf_counter() - t1
    rows = comm.gather({"rank": rank, "lo": mine.lo, "hi": mine.hi, "tiles": len(tiles),
                        "layers": len(tiles) * (mine.hi[2] - mine.lo[2]), "ions_with_halo": len(local),
                        **{k: round(v, 2) for k, v in dist.phases.items()}, "index_s": round(t_index, 2),
                        "cube_maps": n_maps, "maps_s": round(t_maps, 1),
                        "maps_per_s": round(n_maps / t_maps, 1), "inference_sample": len(sample_maps),
                        "inference_maps_per_s": round(len(sample_maps) / t_inf, 1),
                        "rss_model_loaded_mb": round(rss_base), "rss_before_maps_mb": round(rss_index),
                        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                        "wall_s": round(time.perf_counter() - t0, 1)})
    if rank == 0:
        print(json.dumps({"ions": dist.n_total, "grid": list(dist.grid.shape), "ranks": rows}))


SCALING_ASSUMPTIONS = (
    "one core per rank at this machine's per-rank rates; read and exchange rates per rank hold at "
    "scale (a parallel file system and a network that keep up); cubes, ions and tile layers spread "
    "evenly over z-slabs (the tip's longest axis, where the bisection cuts first); each slab also holds "
    "(cube - stride) + radius = 4.5 nm of halo ions on either side; slabs thinner than ~9 nm hold more "
    "halo than own ions, where the scan cuts across x and y too, which this model leaves out")


def scaling_model(measured: dict, n_ions: float, height_nm: float, ranks=(2, 16, 64, 128, 256)):
    """Wall time and memory per rank of a z-slab scan of n_ions on P ranks (SCALING_ASSUMPTIONS),
    from the per-rank rates of the --full run."""
    rows = measured["ranks"]
    n2 = measured["ions"]
    cubes = sum(r["cube_maps"] for r in rows)
    layers = sum(r["layers"] for r in rows)
    per_layer_s, per_cube_s = map_costs(rows)
    inf_rate = np.mean([r["inference_maps_per_s"] for r in rows])
    read_rate = np.mean([n2 / len(rows) / max(r["read_s"], 1e-6) for r in rows])
    xch_rate = np.mean([r["ions_with_halo"] / max(r["exchange_s"], 1e-6) for r in rows])
    index_rate = np.mean([r["ions_with_halo"] / max(r["index_s"], 1e-6) for r in rows])
    # memory per rank = imports and model + what grows with its ions (measured before the maps)
    # + the streamed window of voxel-layer maps (grows with the tip's cross-section, not with P)
    base = max(r["rss_model_loaded_mb"] for r in rows)
    mem_per_ion = np.mean([(r["rss_before_maps_mb"] - r["rss_model_loaded_mb"]) / r["ions_with_halo"]
                           for r in rows])
    window_mb = max(r["peak_rss_mb"] - r["rss_before_maps_mb"] for r in rows)
    halo = 9.0
    out = []
    for p in ranks:
        slab = height_nm / p
        with_halo = n_ions / p * (1 + halo / slab)
        c = cubes * n_ions / n2 / p
        t = {"ranks": p, "slab_nm": round(slab, 2), "ions_with_halo_per_rank": int(with_halo),
             "read_s": round(n_ions / p / read_rate, 1), "exchange_s": round(with_halo / xch_rate, 1),
             "index_s": round(with_halo / index_rate, 1),
             "maps_s": round(layers / p * per_layer_s + c * per_cube_s, 1), "inference_s": round(c / inf_rate, 1)}
        t["total_s"] = round(sum(v for k, v in t.items() if k.endswith("_s")), 1)
        t["peak_rss_mb"] = int(base + mem_per_ion * with_halo + window_mb)
        out.append(t)
    return {"assumptions": SCALING_ASSUMPTIONS,
            "own_ions_measured": int(n2 / len(rows)), "map_s_per_layer": round(per_layer_s, 3),
            "map_cubes_per_s_per_rank": round(1 / per_cube_s, 1),
            "inference_rate_per_rank": round(inf_rate, 1), "mb_per_ion_with_halo": round(mem_per_ion * 1e6) / 1e6,
            "map_window_mb": round(window_mb), "predicted": out}


def map_costs(rows) -> tuple:
    """(seconds per cube layer, seconds per cube) of the map stage: a layer costs box sums over
    the whole x-y grid whether or not its voxels hold ions, a cube its own pairs. Fitted to the
    ranks' (layers, cubes, time) when they differ enough to separate the two; else all per cube."""
    a = np.array([[r["layers"], r["cube_maps"]] for r in rows], float)
    y = np.array([r["maps_s"] for r in rows])
    if len(rows) >= 2 and np.linalg.cond(a / a.max(axis=0)) < 1e2:
        coef = np.linalg.lstsq(a, y, rcond=None)[0]
        if np.all(coef > 0):
            return float(coef[0]), float(coef[1])
    return 0.0, float(y.sum() / a[:, 1].sum())


def full(fraction: float, sample: int):
    env = bench_env()
    cli = [sys.executable, "-m", "apt_cnn_hpc"]
    n_ions = FULL_IONS * fraction
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as d:
        d = Path(d)
        h = tip_height(n_ions, DENSITY)
        (d / "tip.yaml").write_text(json.dumps({"shape": "cone", "cone": {**FULL_TIP, "height_nm": h}}))
        t_gen = run(cli + ["specimen", "--config", str(d / "tip.yaml"), "--out", str(d / "s"), "--seed", "45"],
                    env)
        gen_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        t = time.perf_counter()
        out = subprocess.run([str(Path(sys.executable).parent / "mpiexec"), "-n", "2", sys.executable,
                              __file__, "--worker", str(d / "s.pos"), str(d / "s.rrng"), "--sample",
                              str(sample)], env=env, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - t
    measured = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps({"specimen": {"ions": measured["ions"], "shape": "cone", **FULL_TIP,
                                   "height_nm": round(h, 1), "generation_s": round(t_gen, 1),
                                   "generation_peak_rss_mb": round(gen_rss)},
                      "run_2_ranks": {"wall_s": round(wall, 1), "grid": measured["grid"],
                                      "per_rank": measured["ranks"]},
                      "scaling_model_45M": scaling_model(measured, FULL_IONS, tip_height(FULL_IONS, DENSITY))},
                     indent=2))


def bench_env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", APT_CNN_NO_PROGRESS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
                OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--size", type=float, help="specimen cube side in nm (default 44, quick 20)")
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--fraction", type=float, default=1.0, help="--full: share of the 45 M ions")
    ap.add_argument("--sample", type=int, default=4096, help="--full: maps per rank for inference")
    ap.add_argument("--scaling", metavar="FULL.json", help="redo the scaling model of a saved --full output")
    ap.add_argument("--worker", nargs=2, metavar=("POS", "RRNG"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker(*a.worker, a.sample)
    if a.full:
        return full(a.fraction, a.sample)
    if a.scaling:
        saved = json.loads(Path(a.scaling).read_text())
        measured = {"ions": saved["specimen"]["ions"], "ranks": saved["run_2_ranks"]["per_rank"]}
        return print(json.dumps(scaling_model(measured, FULL_IONS, tip_height(FULL_IONS, DENSITY)), indent=2))
    size = a.size or (20.0 if a.quick else 44.0)
    env = bench_env()
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
                      "per_rank": [{k: round(v, 1) if isinstance(v, float) else v for k, v in t.items()}
                                   for t in prov["timings_per_rank"]]}
        naive = naive_seconds_per_cube(d / "s.pos", d / "s.rrng")
    maps_s_1 = res[1]["per_rank"][0]["maps_s"]
    rates, flops = inference_rates()
    peak = {"float32": gemm_gflops("float32"), "bfloat16": gemm_gflops("bfloat16")}
    np_sgemm = numpy_sgemm_gflops()
    print(json.dumps({
        "specimen": {"size_nm": size, "ions": n_ions, "cube_positions": positions,
                     "generation_s": round(t_gen, 1)},
        "scan_1_rank": res[1], "scan_2_ranks": res[2],
        "strong_scaling_efficiency_2_ranks": round(res[1]["wall_s"] / (2 * res[2]["wall_s"]), 3),
        # what the default method (ion_mlp) and the plane visibility add to the paper's scan, per rank
        "added_by_per_ion_and_planes": {f"{n}_ranks": [round((t.get("per_ion_s", 0) + t.get("planes_s", 0))
                                                             / max(t["total_s"] - t.get("per_ion_s", 0)
                                                                   - t.get("planes_s", 0), 1e-9), 3)
                                                       for t in res[n]["per_rank"]] for n in (1, 2)},
        "sdm_stage": {"voxel_sum_s_1_rank": maps_s_1, "naive_s_per_cube": round(naive, 4),
                      "naive_s_extrapolated": round(naive * res[1]["cubes_evaluated"], 1),
                      "speedup": round(naive * res[1]["cubes_evaluated"] / maps_s_1, 1)},
        "inference": {"mflop_per_map": round(flops / 1e6, 1),
                      "gemm_gflops": {"float32_tensorflow": round(peak["float32"], 1),
                                      "float32_numpy": round(np_sgemm, 1),
                                      "bfloat16_tensorflow": round(peak["bfloat16"], 1)},
                      "bfloat16_max_abs_diff": round(rates.pop("bfloat16_max_abs_diff"), 5),
                      **{name: {"maps_per_s": round(r, 1), "gflops": round(r * flops / 1e9, 1),
                                "fraction_of_float32_sgemm": round(r * flops / 1e9 / max(peak["float32"], np_sgemm), 3),
                                "fraction_of_same_dtype_gemm": round(
                                    r * flops / 1e9 / peak["bfloat16" if name == "bfloat16" else "float32"], 3)}
                         for name, r in rates.items()}},
    }, indent=2))


if __name__ == "__main__":
    main()
