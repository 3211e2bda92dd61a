"""The distributed scan: decomposition, cube maps by voxel sums, batched CNN inference, voxel sums.

Each cube is evaluated by exactly one rank; the cube probabilities are summed over ranks (every
cube is non-zero on one rank only, so the sum is exact) and every voxel then gets the sum of the
cubes covering it by box sums. The result is the same for any number of ranks.
"""
import json
import logging
import resource
import time
from pathlib import Path

import numpy as np

from ..config import config_dir, load_config, load_yaml, merge, positive
from ..errors import InputError
from ..fileutil import check_output, sha256_file
from ..io import read_ranges
from ..contracts.ion_model import DEFAULT_ION_MODEL, load_ion_card
from ..contracts.model_dir import check_settings, load_card, load_model
from ..sdm.ion_features import HALO_NM
from ..model.ensemble import combined_sha256, member_dirs
from ..model.predict import PRECISIONS, Predictor
from ..parallel import is_root, progress
from ..parallel.mpi import configure_tensorflow
from ..provenance import provenance
from ..sdm import PartnerIndex, SDMSettings, cube_counts, cube_maps_by_layer
from ..sdm.normalise import to_uint8
from ..sdm.visibility import MEANING as VISIBILITY_MEANING, THRESHOLD as VISIBILITY_THRESHOLD
from ..sdm.voxel import box_sum_axis
from . import planes
from .checkpoint import Checkpoints
from .ion_probability import ion_probability, missing_solutes
from ..parallel.mpi import allreduce_array, collective
from .decompose import distribute
from ..contracts.scan_file import write_scan

log = logging.getLogger(__name__)
DEFAULT_MODEL = Path(__file__).resolve().parent.parent.parent / "models" / "default"


def scan_settings(config_path):
    cfg = load_config("scan", config_path)
    sdm = merge(load_yaml(config_dir() / "sdm.yaml"), cfg.get("sdm") or {})
    where = config_path or "configs/scan.yaml"
    settings = SDMSettings.from_dict(sdm, where)
    cfg["min_reference"] = int(positive(cfg, "min_reference", where, allow_zero=True))
    cfg["batch"] = int(positive(cfg, "batch", where))
    cfg["precision"] = str(cfg.get("precision", "float32"))
    if cfg["precision"] not in PRECISIONS:
        raise InputError(where, f"precision must be one of {', '.join(PRECISIONS)}, got {cfg['precision']!r}")
    cfg["per_ion"] = bool(cfg.get("per_ion", True))
    cfg["ion_model"] = str(cfg.get("ion_model") or DEFAULT_ION_MODEL)
    return cfg, settings


def outputs(args) -> list:
    """[(output path, model directories whose mean it holds)]: one file for a model (or the first K
    members of an ensemble), or one file per model when several are given (the maps made once)."""
    models = [Path(m) for m in (args.model or [DEFAULT_MODEL])]
    if len(models) != len(args.out) and len(models) > 1:
        raise InputError(None, f"{len(models)} models need {len(models)} --out files, got {len(args.out)}")
    if len(models) == 1:
        if len(args.out) != 1:
            raise InputError(None, "several --out files need as many --model directories")
        return [(Path(args.out[0]), member_dirs(models[0], args.ensemble))]
    if args.ensemble != 1:
        raise InputError(None, "--ensemble takes one ensemble --model directory")
    return [(Path(o), member_dirs(m, 1)) for o, m in zip(args.out, models)]


def _prepare(args, comm):
    """Every check that can fail on bad input, made collectively before any heavy work."""
    cfg, settings = scan_settings(args.config)
    groups = outputs(args)
    model_dirs = [d for _, dirs in groups for d in dirs]
    cards = [load_card(d) for d in model_dirs]
    for d, card in zip(model_dirs, cards):
        check_settings(card, settings, d / "model_card.json")
    for out, _ in groups:
        check_output(out, args.overwrite)
    ranges = read_ranges(args.range)
    for sp in settings.pair:
        try:
            ranges.index(sp)
        except InputError as exc:
            raise InputError(args.range, exc.problem) from None
    if cfg["per_ion"]:
        missing = missing_solutes(cfg["ion_model"], ranges)
        if missing:
            log.warning("scan: no per-ion probabilities: %s defines no range for %s (the per-ion model's "
                        "solutes)", args.range, ", ".join(missing))
            cfg["per_ion"] = False
    return cfg, settings, groups, model_dirs, cards, ranges


def cube_inputs(local, ranges, settings: SDMSettings, grid):
    """What the cube maps of one rank need: the partner index, reference positions and ids, and
    the reference count of every cube position of the global grid."""
    labels = ranges.label(local.mq)
    pos = local.xyz.astype(np.float64)
    ids = np.arange(len(pos))
    is_ref = labels == ranges.index(settings.pair[0])
    is_part = labels == ranges.index(settings.pair[1])
    index = PartnerIndex(pos[is_part], ids[is_part], settings)
    ref_pos, ref_ids = pos[is_ref], ids[is_ref]
    return index, ref_pos, ref_ids, cube_counts(grid, grid.index(ref_pos), settings.cube_voxels, full=True)


def scan(args, comm):
    rank, size = comm.Get_rank(), comm.Get_size()
    t0 = time.time()
    cfg, settings, groups, model_dirs, cards, ranges = collective(comm, _prepare, args, comm)
    model_sha256 = combined_sha256([c["model_sha256"] for c in cards])
    k_members = len(model_dirs)
    drop = bool(args.drop_invalid or cfg.get("drop_invalid", False))
    n_total, grid, slabs, local, record_index, ion_count, phases = distribute(
        comm, args.input, drop, settings, halo_nm=HALO_NM if cfg["per_ion"] else 0.0)
    mine = slabs[rank]
    m = settings.cube_voxels
    t_read = time.time() - t0
    log.info("rank %d: cube z-origins [%d, %d), %d ions with halo (weight %.0f), grid %s, %.1f s",
             rank, mine.k0, mine.k1, len(local), mine.weight, grid.shape, t_read)

    hashes = None
    if rank == 0:
        hashes = {"input": sha256_file(args.input), "range": sha256_file(args.range)}
    hashes = comm.bcast(hashes)
    meta = {"hashes": hashes, "model": model_sha256, "sdm": settings.to_dict(),
            "min_reference": cfg["min_reference"], "precision": cfg["precision"],
            "grid": [grid.origin_nm, grid.shape]}
    ckpt = Checkpoints(groups[0][0], meta, comm)

    ox, oy, oz = grid.cube_origins(m, full=True)
    ncx, ncy, ncz = len(ox), len(oy), len(oz)
    P = np.zeros((k_members, ncx, ncy, ncz), np.float64)   # cube probability per member (0: not evaluated)
    E = np.zeros((ncx, ncy, ncz), np.float64)     # 1 where evaluated
    R = np.zeros((ncx, ncy, ncz), np.float64)     # reference ions per cube
    my_layers = [int(k) for k in range(mine.k0, mine.k1)]
    done = ckpt.done()
    for k in list(my_layers):
        if (k, k + 1) in done:
            d = np.load(done[(k, k + 1)])
            iz = k + (m - 1)
            P[:, :, :, iz], E[:, :, iz], R[:, :, iz] = d["p"], d["e"], d["r"]
    todo = [k for k in my_layers if (k, k + 1) not in done]
    if len(todo) < len(my_layers):
        log.info("rank %d: %d of %d cube layers restored from %s", rank, len(my_layers) - len(todo),
                 len(my_layers), ckpt.dir)

    index, ref_pos, ref_ids, n_ref_all = cube_inputs(local, ranges, settings, grid)
    t1 = time.time()
    local_xyz, species = local.xyz.astype(np.float64), ranges.label(local.mq)
    ranged = species >= 0
    own_layers = planes.owned(local_xyz, grid, mine)
    field = planes.fit_field(comm, local_xyz, record_index, ranged, own_layers, grid)
    voxel_sums, visibility = planes.visibility(comm, local_xyz, ranged, own_layers, grid, field)
    phases["planes_s"] = time.time() - t1
    per_ion = None
    if cfg["per_ion"]:
        t1 = time.time()
        per_ion = ion_probability(comm, cfg["ion_model"], local_xyz, record_index, species, ranges, own_layers,
                                  grid, field, voxel_sums, n_total)
        phases["per_ion_s"] = time.time() - t1

    configure_tensorflow(comm)
    predictors = [Predictor(load_model(d), batch=cfg["batch"], precision=cfg["precision"],
                            calibration=card.get("calibration")) for d, card in zip(model_dirs, cards)]
    bar = progress(len(todo) * ncx * ncy, f"scan (rank 0 of {size})", comm, unit="cube")
    t_maps = t_inf = 0.0
    n_eval = 0
    pending = []  # (kz, selected cube indices, uint8 maps) of layers waiting for inference

    def flush():
        """Infer the pending layers in full batches, then checkpoint each of them."""
        nonlocal t_inf, n_eval
        t2 = time.time()
        maps = np.concatenate([mp for _, _, mp in pending]) if pending else np.zeros((0,))
        p = np.stack([predict(maps) if len(maps) else np.zeros(0) for predict in predictors])
        t_inf += time.time() - t2
        start = 0
        for kz, sel, mp in pending:
            iz = kz + (m - 1)
            P[:, sel[:, 0], sel[:, 1], iz] = p[:, start:start + len(sel)]
            E[sel[:, 0], sel[:, 1], iz] = 1
            R[:, :, iz] = n_ref_all[:, :, iz]
            start += len(sel)
            n_eval += len(sel)
            ckpt.save(kz, kz + 1, p=P[:, :, :, iz], e=E[:, :, iz], r=R[:, :, iz])
            bar.update(ncx * ncy)
        pending.clear()

    if todo:
        t1 = time.time()
        for kz, maps in cube_maps_by_layer(index, ref_pos, ref_ids, grid, m, full=True, z_origins=todo):
            sel = np.argwhere(n_ref_all[:, :, kz + (m - 1)] >= max(cfg["min_reference"], 1))
            pending.append((kz, sel, to_uint8(maps[sel[:, 0], sel[:, 1]])))
            t_maps += time.time() - t1
            if sum(len(x[1]) for x in pending) >= 4 * cfg["batch"]:
                flush()
            t1 = time.time()
        flush()
    bar.close()
    log.info("rank %d: %d cubes evaluated in %d layers; maps %.1f s, inference %.1f s", rank, n_eval,
             len(todo), t_maps, t_inf)

    P, E, R = (allreduce_array(comm, a) for a in (P, E, R))
    # voxel (i) is covered by cube origins i-m+1..i, i.e. P indices i..i+m-1
    member_sums, window = P, E
    for axis, n in enumerate(grid.shape):
        member_sums = box_sum_axis(member_sums, np.arange(n), m, axis + 1)
        window = box_sum_axis(window, np.arange(n), m, axis)
    evaluated = np.argwhere(E > 0)
    skipped = int(np.count_nonzero((R > 0) & (E == 0)))
    timings = {"read_exchange_s": t_read, **phases, "maps_s": t_maps, "inference_s": t_inf,
               "total_s": time.time() - t0, "cubes_evaluated": n_eval, "ions_with_halo": len(local),
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    timings = comm.gather(timings)
    if is_root(comm):
        origins = np.stack([ox[evaluated[:, 0]], oy[evaluated[:, 1]], oz[evaluated[:, 2]]], axis=1)
        first = 0
        for out, dirs in groups:
            k = slice(first, first + len(dirs))
            first += len(dirs)
            sums, probs, group_cards = member_sums[k], P[k], cards[k]
            voxels = {"probability_sum": sums.mean(axis=0).astype(np.float32)}
            cubes = {"origin_nm": (np.asarray(grid.origin_nm) + origins * grid.voxel_nm).astype(np.float32),
                     "probability": probs.mean(axis=0)[tuple(evaluated.T)].astype(np.float32),
                     "n_reference": R[tuple(evaluated.T)].astype(np.uint32)}
            if len(dirs) > 1:   # an ensemble: the spread of the members' voxel sums (sample sd)
                voxels["probability_sum_sd"] = sums.std(axis=0, ddof=1).astype(np.float32)
                cubes["probability_members"] = probs[(slice(None), *evaluated.T)].T.astype(np.float32)
            record = provenance({"scan": {k: v for k, v in cfg.items() if k != "_source"},
                                 "sdm": settings.to_dict(), "drop_invalid": drop},
                                {"input": args.input, "range": args.range},
                                model_sha256=combined_sha256([c["model_sha256"] for c in group_cards]),
                                model_card=group_cards[0], model_dir=str(dirs[0].resolve()), n_ranks=size,
                                ensemble=[{"model_dir": str(d.resolve()), "model_sha256": c["model_sha256"]}
                                          for d, c in zip(dirs, group_cards)] if len(dirs) > 1 else None,
                                timings_per_rank=timings, decomposition=[s.__dict__ for s in slabs])
            write_scan(out, grid, {**voxels, "window_count": np.rint(window).astype(np.uint8),
                                   "ion_count": np.rint(ion_count).astype(np.uint32),
                                   "plane_visibility": visibility},
                       cubes, record, {"n_ions": n_total, "cubes_evaluated": len(evaluated),
                                       "cubes_skipped_few_references": skipped, "n_ranks": size,
                                       "min_reference": cfg["min_reference"], "ensemble_members": len(dirs),
                                       "plane_field": json.dumps(field.to_dict()),
                                       "plane_visibility_threshold": VISIBILITY_THRESHOLD,
                                       "plane_visibility_meaning": VISIBILITY_MEANING},
                       ions=None if per_ion is None else
                       {"l12_probability": per_ion, "method": "ion_mlp", "model_dir": str(Path(cfg["ion_model"]).resolve()),
                        "model_sha256": load_ion_card(cfg["ion_model"])["model_sha256"]},
                       overwrite=args.overwrite)
            log.info("scan: %d ions, %d cubes evaluated, %d skipped (< %d references) -> %s in %.1f s",
                     n_total, len(evaluated), skipped, cfg["min_reference"], out, time.time() - t0)
    comm.Barrier()
    ckpt.remove()
    return json.dumps(timings[0]) if timings else ""


def run(args):
    from ..parallel import comm_world
    scan(args, comm_world())
