"""The distributed scan: decomposition, cube maps by voxel sums, batched CNN inference, voxel sums.

Each cube is evaluated by exactly one rank (its block); the cube probabilities then move to the
rank that writes the voxels they cover (scan/shares.py: under the mpio writer every rank its own
block's voxels, under the serial one rank 0), which sums the cubes covering each voxel in a fixed
order. The result is
the same for any number of ranks, tiles and writers.
"""
import json
import logging
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
from ..parallel.mpi import CountingComm, configure_tensorflow
from ..provenance import provenance
from ..sdm import PartnerIndex, SDMSettings, cube_maps_by_layer
from ..sdm.voxel import compact_voxels
from ..sdm.normalise import to_uint8
from ..sdm.visibility import MEANING as VISIBILITY_MEANING, THRESHOLD as VISIBILITY_THRESHOLD
from . import planes
from .checkpoint import Checkpoints
from .ion_probability import ion_probability, missing_solutes
from ..parallel.mpi import collective
from .budget import current_rss_mb, peak_rss_mb, release_free_memory, tile_voxels
from .assemble import ScanParts
from .decompose import AXES, distribute
from .shares import WRITERS, WriteShares
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
    cfg["memory_budget_mb"] = float(positive(cfg, "memory_budget_mb", where))
    cfg["decomposition"] = str(cfg.get("decomposition", "blocks"))
    if cfg["decomposition"] not in AXES:
        raise InputError(where, f"decomposition must be one of {', '.join(AXES)}, got {cfg['decomposition']!r}")
    cfg["writer"] = str(cfg.get("writer", "auto"))
    if cfg["writer"] not in WRITERS:
        raise InputError(where, f"writer must be one of {', '.join(WRITERS)}, got {cfg['writer']!r}")
    cfg["ion_model"] = str(cfg.get("ion_model") or DEFAULT_ION_MODEL)
    cfg["per_ion_slab_ions"] = int(positive(cfg, "per_ion_slab_ions", where))
    return cfg, settings


def parallel_writer(mode: str, n_ranks: int, where) -> bool:
    """Whether every rank writes its own rows (parallel HDF5) or rank 0 the whole file."""
    import h5py
    if mode == "mpio" and not h5py.get_config().mpi:
        raise InputError(where, "writer: mpio needs h5py built with MPI (scripts/install.sh, APT_CNN_H5_MPI=on)")
    return mode == "mpio" or (mode == "auto" and h5py.get_config().mpi and n_ranks > 1)


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
    cfg["writer"] = getattr(args, "writer", None) or cfg["writer"]
    cfg["parallel_write"] = parallel_writer(cfg["writer"], comm.Get_size(), args.config or "configs/scan.yaml")
    if cfg["per_ion"]:
        missing = missing_solutes(cfg["ion_model"], ranges)
        if missing:
            log.warning("scan: no per-ion probabilities: %s defines no range for %s (the per-ion model's "
                        "solutes)", args.range, ", ".join(missing))
            cfg["per_ion"] = False
    return cfg, settings, groups, model_dirs, cards, ranges


def cube_inputs(pos, labels, ranges, settings: SDMSettings):
    """What the cube maps of one rank need from its ions (float64 positions, range labels): the
    partner index, reference positions and ids."""
    part = np.flatnonzero(labels == ranges.index(settings.pair[1]))
    index = PartnerIndex(pos[part], part, settings)
    if settings.pair[0] == settings.pair[1]:     # the same ions: share the index's copies
        return index, index.pos, index.ids
    ref = np.flatnonzero(labels == ranges.index(settings.pair[0]))
    return index, pos[ref], ref


def tile_slices(tile, kz: int, lo) -> tuple:
    """Index of a tile's cube z-layer kz in the arrays of its block (first cube origin `lo`)."""
    (i0, i1), (j0, j1) = tile
    return slice(i0 - lo[0], i1 - lo[0]), slice(j0 - lo[1], j1 - lo[1]), kz - lo[2]


def selected_maps(index, ref_pos, ref_ids, grid, m: int, todo: dict, block_ref, lo, min_ref: int):
    """Yield (tile, kz, cube indices within the tile with >= min_ref references, their uint8 maps)
    for the z-layers todo[tile] of each tile of the block (first cube origin `lo`, reference
    counts block_ref), streaming each tile's voxel layers; the references' voxels are found once."""
    ref_vox = compact_voxels(grid, ref_pos) if todo else None
    for tile, layers in todo.items():
        for kz, maps in cube_maps_by_layer(index, ref_pos, ref_ids, grid, m, full=True, z_origins=layers,
                                           xy_origins=tile, ref_vox=ref_vox):
            sel = np.argwhere(block_ref[tile_slices(tile, kz, lo)] >= max(min_ref, 1))
            # normalised 256 maps at a time: its float temporaries stay small
            yield tile, kz, sel, np.concatenate([to_uint8(maps[s[:, 0], s[:, 1]])
                                                 for s in np.split(sel, range(256, len(sel), 256))])


def scan(args, comm):
    rank, size = comm.Get_rank(), comm.Get_size()
    t0 = time.time()
    cfg, settings, groups, model_dirs, cards, ranges = collective(comm, _prepare, args, comm)
    model_sha256 = combined_sha256([c["model_sha256"] for c in cards])
    k_members = len(model_dirs)
    drop = bool(args.drop_invalid or cfg.get("drop_invalid", False))
    ref_species = ranges.index(settings.pair[0])
    dist = distribute(comm, args.input, drop, settings, lambda mq: ranges.label(mq) == ref_species,
                      cfg["min_reference"], halo_nm=HALO_NM if cfg["per_ion"] else 0.0,
                      decomposition=cfg["decomposition"], per_ion=bool(cfg["per_ion"]))
    n_total, grid, blocks, record_index, phases = dist.n_total, dist.grid, dist.blocks, dist.record_index, dist.phases
    peaks = {"read_exchange": peak_rss_mb()}     # the high-water mark after each phase (MB)
    # from here on positions in float64 and range labels, not the float32 records
    local_xyz, species = dist.local.xyz.astype(np.float64), ranges.label(dist.local.mq)
    dist.local = None
    mine = blocks[rank]
    m = settings.cube_voxels
    budget_mb = float(getattr(args, "memory_budget", None) or cfg["memory_budget_mb"])
    tiles = mine.tiles(tile_voxels(budget_mb, len(local_xyz), dist.block_ref.size, k_members + 2, cfg["batch"],
                                   settings.map_bins, m), m)
    t_read = time.time() - t0
    log.info("rank %d: cube origins %s..%s in %d tiles, %d ions with halo (cost %.0f s), grid %s, %.1f s",
             rank, mine.lo, mine.hi, len(tiles), len(local_xyz), mine.weight / 1000, grid.shape, t_read)

    hashes = None
    if rank == 0:
        hashes = {"input": sha256_file(args.input), "range": sha256_file(args.range)}
    hashes = comm.bcast(hashes)
    meta = {"hashes": hashes, "model": model_sha256, "sdm": settings.to_dict(),
            "min_reference": cfg["min_reference"], "precision": cfg["precision"],
            "grid": [grid.origin_nm, grid.shape]}
    ckpt = Checkpoints(groups[0][0], meta, comm)

    # this block's cube origins: probability per member (0: not evaluated), 1 where evaluated
    P = np.zeros((k_members,) + dist.block_ref.shape, np.float64)
    E = np.zeros(dist.block_ref.shape, np.float64)
    done = ckpt.done()
    todo = {}
    for tile in tiles:
        for k in range(mine.lo[2], mine.hi[2]):
            key = ckpt.key(tile, k)
            if key in done:
                d = np.load(done[key])
                P[(slice(None), *tile_slices(tile, k, mine.lo))], E[tile_slices(tile, k, mine.lo)] = d["p"], d["e"]
            else:
                todo.setdefault(tile, []).append(k)
    n_layers = len(tiles) * (mine.hi[2] - mine.lo[2])
    n_todo = sum(len(v) for v in todo.values())
    if n_todo < n_layers:
        log.info("rank %d: %d of %d tile layers restored from %s", rank, n_layers - n_todo, n_layers, ckpt.dir)

    index, ref_pos, ref_ids = cube_inputs(local_xyz, species, ranges, settings)
    peaks["partner_index"] = peak_rss_mb()
    t1 = time.time()
    ranged = species >= 0
    own = mine.owns(grid.index(local_xyz), grid.shape)
    field = planes.fit_field(comm, local_xyz, record_index, ranged, own, grid)
    shares = WriteShares.make(cfg["parallel_write"], blocks, grid.shape, n_total, m)
    box = mine.voxels(grid.shape)
    phasors = planes.phasor_part(local_xyz, ranged, own, grid, box, field)
    visibility = planes.visibility_box(comm, phasors, box[0], grid, shares)
    phases["planes_s"] = time.time() - t1
    peaks["planes"] = peak_rss_mb()
    # before the per-ion pass's networks start TensorFlow (afterwards its threads cannot be set:
    # on 2 ranks each then ran 2 threads on its 1 core, in the per-ion pass and the cube inference)
    configure_tensorflow(comm)
    per_ion = None
    if cfg["per_ion"]:
        t1 = time.time()
        per_ion = ion_probability(comm, cfg["ion_model"], local_xyz, record_index, species, ranges, own,
                                  grid, field, (phasors, box[0]), [(b.box_lo_nm, b.box_hi_nm) for b in blocks],
                                  cfg["per_ion_slab_ions"])
        phases["per_ion_s"] = time.time() - t1
        peaks["per_ion"] = peak_rss_mb()
        release_free_memory()

    predictors = [Predictor(load_model(d), batch=cfg["batch"], precision=cfg["precision"],
                            calibration=card.get("calibration")) for d, card in zip(model_dirs, cards)]
    rss_before_maps = current_rss_mb()   # what the budget's fixed part estimates (BASE_MB, BYTES_PER_ION)
    peaks["models"] = peak_rss_mb()
    bar = progress(sum((t[0][1] - t[0][0]) * (t[1][1] - t[1][0]) * len(k) for t, k in todo.items()),
                   f"scan (rank 0 of {size})", comm, unit="cube")
    t_maps = t_inf = 0.0
    n_eval = 0
    pending = []  # (tile, kz, selected cube indices in the tile, uint8 maps) waiting for inference

    def flush():
        """Infer the pending tile layers in full batches, then checkpoint each of them."""
        nonlocal t_inf, n_eval
        t2 = time.time()
        maps = np.concatenate([mp for *_, mp in pending]) if pending else np.zeros((0,))
        p = np.stack([predict(maps) if len(maps) else np.zeros(0) for predict in predictors])
        t_inf += time.time() - t2
        start = 0
        for tile, kz, sel, _ in pending:
            sx, sy, iz = tile_slices(tile, kz, mine.lo)
            P[:, sx.start + sel[:, 0], sy.start + sel[:, 1], iz] = p[:, start:start + len(sel)]
            E[sx.start + sel[:, 0], sy.start + sel[:, 1], iz] = 1
            start += len(sel)
            n_eval += len(sel)
            ckpt.save(ckpt.key(tile, kz), p=P[:, sx, sy, iz], e=E[sx, sy, iz])
            bar.update((sx.stop - sx.start) * (sy.stop - sy.start))
        pending.clear()

    t1 = time.time()
    for item in selected_maps(index, ref_pos, ref_ids, grid, m, todo, dist.block_ref, mine.lo, cfg["min_reference"]):
        pending.append(item)
        t_maps += time.time() - t1
        if sum(len(x[2]) for x in pending) >= 4 * cfg["batch"]:
            flush()
        t1 = time.time()
    flush()
    bar.close()
    peaks["maps"] = peak_rss_mb()
    log.info("rank %d: %d cubes evaluated in %d tile layers; maps %.1f s, inference %.1f s", rank, n_eval,
             n_todo, t_maps, t_inf)

    timings = {"read_exchange_s": t_read, **phases, "maps_s": t_maps, "inference_s": t_inf,
               "cubes_evaluated": n_eval, "ions_with_halo": len(local_xyz), "tiles": len(tiles),
               "memory_budget_mb": budget_mb, "rss_before_maps_mb": round(rss_before_maps)}
    t1 = time.time()
    share = ScanParts(comm, shares, grid, m, mine, P, E, dist.block_ref, visibility, local_xyz[own], per_ion)
    timings["assemble_s"] = time.time() - t1
    peaks["assemble"] = peak_rss_mb()
    timings.update(total_s=time.time() - t0, cpu_s=time.process_time(), bytes_sent=dict(comm.sent),
                   peak_rss_mb=peaks["assemble"], peak_rss_mb_after={k: round(v) for k, v in peaks.items()})
    timings = comm.gather(timings)
    writers = comm if cfg["parallel_write"] else None
    first = 0
    for out, dirs in groups:
        k = slice(first, first + len(dirs))
        first += len(dirs)
        group_cards = cards[k]
        record = None
        if is_root(comm):
            record = provenance({"scan": {k: v for k, v in cfg.items() if k != "_source"},
                                 "sdm": settings.to_dict(), "drop_invalid": drop},
                                {"input": args.input, "range": args.range},
                                model_sha256=combined_sha256([c["model_sha256"] for c in group_cards]),
                                model_card=group_cards[0], model_dir=str(dirs[0].resolve()), n_ranks=size,
                                ensemble=[{"model_dir": str(d.resolve()), "model_sha256": c["model_sha256"]}
                                          for d, c in zip(dirs, group_cards)] if len(dirs) > 1 else None,
                                timings_per_rank=timings, decomposition=[b.__dict__ for b in blocks],
                                writer="mpio" if writers else "serial")
        if writers:
            record = comm.bcast(record)
        if writers or is_root(comm):
            write_scan(out, grid, share.of_members(k), record,
                       {"n_ions": n_total, "cubes_evaluated": share.n_cubes, "cubes_skipped_few_references": share.skipped,
                        "n_ranks": size, "min_reference": cfg["min_reference"], "ensemble_members": len(dirs),
                        "plane_field": json.dumps(field.to_dict()), "plane_visibility_threshold": VISIBILITY_THRESHOLD,
                        "plane_visibility_meaning": VISIBILITY_MEANING},
                       ion_attrs=None if per_ion is None else
                       {"method": "ion_mlp", "model_dir": str(Path(cfg["ion_model"]).resolve()),
                        "model_sha256": load_ion_card(cfg["ion_model"])["model_sha256"]},
                       overwrite=args.overwrite, comm=writers)
        if is_root(comm):
            log.info("scan: %d ions, %d cubes evaluated, %d skipped (< %d references) -> %s (%s writer) in %.1f s",
                     n_total, share.n_cubes, share.skipped, cfg["min_reference"], out,
                     "mpio" if writers else "serial", time.time() - t0)
    comm.Barrier()
    ckpt.remove()
    return json.dumps(timings[0]) if timings else ""


def run(args):
    from ..parallel import comm_world
    scan(args, CountingComm(comm_world()))
