"""Scan benchmark, measured in one run (prints JSON):
- wall time and cubes/s of `apt-cnn scan` on 1 and 2 ranks (strong-scaling efficiency);
- SDM stage: voxel-sum time (from the scan) vs naive per-cube maps (a timed sample, extrapolated);
- inference GFLOP/s next to this machine's SGEMM GFLOP/s measured in the same process;
- peak RSS per rank.
  python bench/scan.py            paper scale: 44 nm cube, ~2.8 M ions, ~100,000 cube positions
  python bench/scan.py --quick    20 nm cube (about a minute)
  python bench/scan.py --full     the paper's whole 45 M-ion size as a tip (cone): generation,
                                  parallel read, decomposition and halo exchange and every cube
                                  map on 2 ranks (tiles within the default memory budget),
                                  inference on a sample of the maps, peak RSS per rank; then the
                                  block-decomposition scaling model (scaling_model) for 45 M and
                                  10^9 ions on 2-1,024 ranks.
                                  --fraction F scales the ion count (a quick trial of the mode).
"""
import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from apt_cnn_hpc.parallel.launcher import local_env, mpiexec

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
REF_SHARE = 0.88                        # its share of reference (Al) ions
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
    "the tip (FULL_TIP cone) cut into boxes by the scan's own bisection (scan/decompose.py) of a 2 nm "
    "cost grid (MAP_COST per cube origin, EVAL_COST and (ION_COST + PER_ION_COST) per reference ion "
    "inside the tip); each box's ions with the "
    "scan's halo (3.5 nm, and the cube's 3 voxels above), at the specimen's density; memory from the "
    "budget's measured figures (scan/budget.py) and the tiles the budget allows (Block.tiles); time at "
    "this machine's per-rank rates (the maps' per origin and per cube, times the tiles' overlap, fitted "
    "to the --full ranks), one core per rank, read and exchange rates held at scale; bytes "
    "sent: 16 per ion with halo (exchange), 12 per own ion and 20 per evaluated cube (to their "
    "writers), the phasor sums (24 bytes per voxel) within REACH of a box and the cube results within "
    "m - 1 (mpio writer); root's cost grid (root_cost_grid_mb, before the maps, on top of what it "
    "holds then); the file "
    "(17 bytes per voxel, 4 per ion, 20 per evaluated cube, uncompressed) written collectively at "
    "FS_GBPS or by one client at CLIENT_GBPS")
FS_GBPS = 10.0        # aggregate parallel file-system bandwidth the mpio writer is assumed to get
CLIENT_GBPS = 1.0     # one client's write bandwidth (the serial writer)
PER_ION_PER_S = 32_000.0   # per-ion pass, own ions per second per rank (paper-scale scan, 2 ranks)
CELL_NM = 2.0


def tip_cells(n_ions: float, density: float):
    """(cell weights of the cost model, share of each 2 nm cell inside the tip, tip height) of the
    FULL_TIP cone holding n_ions."""
    from apt_cnn_hpc.scan.decompose import EVAL_COST, ION_COST, MAP_COST, PER_ION_COST
    h = tip_height(n_ions, density)
    r0, t = FULL_TIP["top_radius_nm"], np.tan(np.radians(FULL_TIP["half_angle_deg"]))
    rmax = r0 + h * t
    nx, nz = int(np.ceil(2 * rmax / CELL_NM)), int(np.ceil(h / CELL_NM))
    x = -rmax + (np.arange(nx) + 0.5) * CELL_NM
    z = (np.arange(nz) + 0.5) * CELL_NM
    rho = np.hypot(x[:, None, None], x[None, :, None])
    inside = (rho < r0 + t * z[None, None, :]).astype(np.float64)
    # cube origins are 1 nm apart; the scan's default runs the per-ion pass
    per_nm3 = MAP_COST + (EVAL_COST + (ION_COST + PER_ION_COST) * REF_SHARE * density) * inside
    return per_nm3 * CELL_NM ** 3, inside, h


def tile_overhead(lo, hi, with_halo: float, budget_mb: float, m: int = 4, batch: int = 64, bins: int = 150):
    """(tiles, voxel columns histogrammed per column of the block) of a block of cube origins
    [lo, hi) under the budget, as the scan tiles it: overlapping windows redo m - 1 columns."""
    from apt_cnn_hpc.scan.budget import tile_voxels
    from apt_cnn_hpc.scan.decompose import Block
    lo, hi = np.asarray(lo, int), np.asarray(hi, int)
    block = Block(0, tuple(int(v) for v in lo), tuple(int(v) for v in hi), 0.0, (), ())
    tiles = block.tiles(tile_voxels(budget_mb, int(with_halo), int(np.prod(hi - lo)), 3, batch, bins, m), m)
    area = sum((a1 - a0 + m - 1) * (b1 - b0 + m - 1) for (a0, a1), (b0, b1) in tiles)
    return tiles, area / max((hi[0] - lo[0]) * (hi[1] - lo[1]), 1)


def map_costs(rows, budget_mb: float) -> tuple:
    """(seconds per cube origin, seconds per evaluated cube) of the map stage, both times the
    tiles' overlap, fitted to the --full ranks (exact for 2); all per cube if the fit fails."""
    a, y = [], []
    for r in rows:
        _, over = tile_overhead(r["lo"], r["hi"], r["ions_with_halo"], budget_mb)
        a.append([over * float(np.prod(np.subtract(r["hi"], r["lo"]))), over * r["cube_maps"]])
        y.append(r["maps_s"])
    a, y = np.array(a), np.array(y)
    coef = np.linalg.lstsq(a, y, rcond=None)[0]
    if np.all(coef > 0):
        return float(coef[0]), float(coef[1])
    return 0.0, float(y.sum() / a[:, 1].sum())


def scaling_model(measured: dict, n_ions: float, ranks=(2, 16, 64, 256, 1024), budget_mb: float = 3584.0):
    """Per rank of a block-decomposed scan of n_ions on P ranks (SCALING_ASSUMPTIONS): ions with
    halo, tiles, peak memory, seconds per phase, bytes sent, and the output's write time; from the
    per-rank rates of the --full run."""
    from apt_cnn_hpc.scan.budget import BASE_MB, BYTES_PER_ION, LAYERS_HELD, MB_PER_BATCH_MAP
    from apt_cnn_hpc.scan.decompose import bisect, cost_cell
    from apt_cnn_hpc.sdm.visibility import REACH
    logging.getLogger("apt_cnn_hpc.scan.budget").setLevel(logging.ERROR)   # one-cube tiles show in tiles_max
    rows = measured["ranks"]
    n2 = measured["ions"]
    inf_rate = np.mean([r["inference_maps_per_s"] for r in rows])
    per_origin_s, per_cube_s = map_costs(rows, 3584.0)      # the --full run's own budget
    read_rate = np.mean([n2 / len(rows) / max(r["read_s"], 1e-6) for r in rows])
    xch_rate = np.mean([r["ions_with_halo"] / max(r["exchange_s"], 1e-6) for r in rows])
    index_rate = np.mean([r["ions_with_halo"] / max(r["index_s"], 1e-6) for r in rows])
    weight, inside, h = tip_cells(n_ions, DENSITY)
    per_cell = DENSITY * CELL_NM ** 3
    c_inside = np.cumsum(np.cumsum(np.cumsum(np.pad(inside, ((1, 0), (1, 0), (1, 0))), 0), 1), 2)

    def ions_in(lo, hi):
        lo, hi = np.clip(lo, 0, inside.shape), np.clip(hi, 0, inside.shape)
        if np.any(hi <= lo):
            return 0.0
        (a0, a1, a2), (b0, b1, b2) = lo, hi
        v = (c_inside[b0, b1, b2] - c_inside[a0, b1, b2] - c_inside[b0, a1, b2] - c_inside[b0, b1, a2]
             + c_inside[a0, a1, b2] + c_inside[a0, b1, a2] + c_inside[b0, a1, a2] - c_inside[a0, a1, a2])
        return float(v) * per_cell

    cfg_batch, bins, m = 64, 150, 4
    n_voxels = int(np.prod(inside.shape)) * CELL_NM ** 3
    n_eval_all = inside.sum() * CELL_NM ** 3
    file_gb = (17 * n_voxels + 4 * n_ions + 20 * n_eval_all) / 1e9
    # root cuts a cost grid of cells of `cell` cube origins: the reference counts, origins, weight
    # and a temporary (8 bytes each per cell), and the ranks' occupied cells (index and count,
    # gathered and concatenated)
    grid_shape = [n * CELL_NM + m - 1 for n in inside.shape]
    cell = cost_cell(grid_shape, m)
    cells = float(np.prod(grid_shape)) / cell ** 3
    root_mb = (4 * 8 * cells + 2 * 16 * cells * inside.mean()) / 2 ** 20
    out = []
    for p in ranks:
        boxes = bisect(weight, p)
        per = []
        for lo, hi, _ in boxes:
            lo, hi = np.asarray(lo), np.asarray(hi)
            own = ions_in(lo, hi)
            halo_lo, halo_hi = 2, 4                                  # cells: 3.5 nm below, 3.5 + 3 nm above
            with_halo = ions_in(lo - halo_lo, hi + halo_hi)
            origins = float(np.prod(hi - lo)) * CELL_NM ** 3
            evaluated = ions_in(lo, hi) / per_cell * CELL_NM ** 3
            tiles, overhead = tile_overhead(lo * CELL_NM, hi * CELL_NM, with_halo, budget_mb, m, cfg_batch, bins)
            (i0, i1), (j0, j1) = tiles[0]
            window = (i1 - i0 + m - 1) * (j1 - j0 + m - 1)
            held_mb = BASE_MB + BYTES_PER_ION * with_halo / 2 ** 20
            maps_mb = cfg_batch * MB_PER_BATCH_MAP + LAYERS_HELD * window * bins * bins * 4 / 2 ** 20
            per_ion_mb = 300 * min(own, 2e6) / 2 ** 20
            t = {"read_s": n_ions / p / read_rate, "exchange_s": with_halo / xch_rate, "index_s": with_halo / index_rate,
                 "per_ion_s": own / PER_ION_PER_S,
                 "maps_s": overhead * (per_origin_s * origins + per_cube_s * evaluated),
                 "inference_s": evaluated / inf_rate}
            side = (hi - lo) * CELL_NM
            shell = lambda h: float(np.prod(side + 2 * h) - np.prod(side))  # noqa: E731  voxels within h of the box
            # ion exchange, per-ion results and evaluated cubes to their writers, the neighbours'
            # phasor sums within REACH and cube results within m - 1 (mpio writer)
            sent = 16 * with_halo + 12 * own + (12 + 8) * evaluated + 24 * shell(REACH) + 9 * shell((m - 1) / 2)
            per.append({"own": own, "with_halo": with_halo, "tiles": len(tiles), "peak_mb": held_mb + max(per_ion_mb, maps_mb),
                        "total_s": sum(t.values()), "sent_mb": sent / 1e6, **t})
        worst = max(per, key=lambda r: r["total_s"])
        out.append({"ranks": p, "ions_with_halo_per_rank_max": int(max(r["with_halo"] for r in per)),
                    "halo_share": round(sum(r["with_halo"] for r in per) / n_ions - 1, 3),
                    "tiles_max": max(r["tiles"] for r in per),
                    "peak_rss_mb_max": int(max(r["peak_mb"] for r in per)),
                    "sent_mb_max": round(max(r["sent_mb"] for r in per), 1),
                    **{k: round(worst[k], 1) for k in ("read_s", "exchange_s", "index_s", "per_ion_s", "maps_s",
                                                      "inference_s", "total_s")},
                    "imbalance": round(max(r["total_s"] for r in per) / np.mean([r["total_s"] for r in per]), 3),
                    "write_mpio_s": round(file_gb / FS_GBPS, 1), "write_serial_s": round(file_gb / CLIENT_GBPS, 1)})
    return {"assumptions": SCALING_ASSUMPTIONS, "ions": n_ions, "tip_height_nm": round(h), "budget_mb": budget_mb,
            "map_ms_per_origin": round(per_origin_s * 1e3, 4), "map_ms_per_cube": round(per_cube_s * 1e3, 4),
            "file_gb": round(file_gb, 1), "fs_gbps": FS_GBPS, "client_gbps": CLIENT_GBPS,
            "cost_cell_origins": cell, "root_cost_grid_mb": round(root_mb),
            "inference_rate_per_rank": round(inf_rate, 1), "per_ion_per_s_per_rank": PER_ION_PER_S,
            "predicted": out}


def full(fraction: float, sample: int):
    env = local_env()
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
        out = subprocess.run([mpiexec(), "-n", "2", sys.executable,
                              __file__, "--worker", str(d / "s.pos"), str(d / "s.rrng"), "--sample",
                              str(sample)], env=env, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - t
    measured = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps({"specimen": {"ions": measured["ions"], "shape": "cone", **FULL_TIP,
                                   "height_nm": round(h, 1), "generation_s": round(t_gen, 1),
                                   "generation_peak_rss_mb": round(gen_rss)},
                      "run_2_ranks": {"wall_s": round(wall, 1), "grid": measured["grid"],
                                      "per_rank": measured["ranks"]},
                      "scaling_model_45M": scaling_model(measured, FULL_IONS),
                      "scaling_model_1e9": scaling_model(measured, 1e9, budget_mb=2000.0)},
                     indent=2))


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
        return print(json.dumps({"45M": scaling_model(measured, FULL_IONS),
                                 "1e9": scaling_model(measured, 1e9, budget_mb=2000.0)}, indent=2))
    size = a.size or (20.0 if a.quick else 44.0)
    env = local_env()
    cli = [sys.executable, "-m", "apt_cnn_hpc"]
    import h5py
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        t_gen = run(cli + ["specimen", "--out", str(d / "s"), "--size", *[str(size)] * 3, "--seed", "99"], env)
        res = {}
        for n in (1, 2):
            out = d / f"scan{n}.h5"
            wall = run([mpiexec(), "-n", str(n)] + cli + [
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
