"""`apt-cnn segment`: every recognition method (segment/methods/) on a scan, each written as a
per-ion result and a precipitate table into the scan file (contracts/segmentation.py), with the
phase SDMs of the default method's two phases and a comparison of the methods."""
import json
import logging
import time
from pathlib import Path

import numpy as np

from ..analysis.run import analyse
from ..config import SegmentConfig
from ..contracts.analyses import write_all_analyses
from ..contracts.segmentation import MethodRecord, Segmentation, is_segmented, write_segmentation
from ..errors import InputError
from ..fileutil import atomic_output
from ..provenance import provenance
from .components import element_table
from .inputs import load_scan_data
from .methods import REGISTRY
from .phase_sdm import phase_sdms
from .tables import precipitate_table
from .undetermined import mark_undetermined

log = logging.getLogger(__name__)


def chosen_methods(cfg: SegmentConfig, names=None) -> dict:
    """name -> Method for the names asked for (default: every method of the config)."""
    names = list(names or cfg.methods)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise InputError(cfg.where, f"unknown method(s) {unknown} (known: {', '.join(sorted(REGISTRY))})")
    return {n: REGISTRY[n].from_config(cfg.methods.get(n, {}), cfg.where) for n in names}


def _without_unranged_components(ids: np.ndarray, species: np.ndarray, voxel_label):
    """Every ion keeps the label of where it lies, unranged ones too (as a cluster envelope takes
    every ion inside it, and as the table's volume counts every ion of the local density); only a
    component without a single ranged ion, which has no composition, is matrix. Components left
    are renumbered in order (ion ids and voxel labels alike)."""
    ids = ids.astype(np.int32)
    n = int(max(ids.max(initial=0), 0 if voxel_label is None else voxel_label.max(initial=0)))
    kept = np.bincount(ids[(ids > 0) & (species >= 0)], minlength=n + 1) > 0
    kept[0] = False
    remap = np.zeros(n + 1, np.int32)
    remap[kept] = np.arange(1, int(kept.sum()) + 1)
    remap = np.concatenate([np.int32([-1]), remap])    # index shift keeps -1 (undetermined)
    return remap[ids + 1], (remap[voxel_label + 1] if voxel_label is not None else None)


def comparison(records: dict, ranged: np.ndarray, default: str) -> dict:
    """Count, mean radius +- sd, volume fraction (labelled ranged ions) and overlap with the
    default method (IoU of the ions labelled L1_2) of every method."""
    ref = records[default].ion_precipitate_id > 0
    out = {}
    for name, rec in records.items():
        r = rec.table["radius_nm"]
        l12 = rec.ion_precipitate_id > 0
        union = np.count_nonzero(l12 | ref)
        out[name] = {"title": rec.title, "count": rec.count,
                     "count_not_at_edge": int(np.count_nonzero(~rec.table["touches_edge"])),
                     "mean_radius_nm": float(r.mean()) if len(r) else None,
                     "sd_radius_nm": float(r.std(ddof=1)) if len(r) > 1 else None,
                     "volume_fraction": float(np.count_nonzero(l12 & ranged) / max(np.count_nonzero(ranged), 1)),
                     "ion_overlap_with_default_iou": float(np.count_nonzero(l12 & ref) / union) if union else None}
    return out


def segment(args) -> dict:
    cfg = SegmentConfig.load(args.config, args.set)
    methods = chosen_methods(cfg, args.method)
    if is_segmented(args.scan) and not args.overwrite:
        raise InputError(args.scan, "already segmented (pass --overwrite to replace /precipitates)")
    data = load_scan_data(args.scan, args.input, args.range)
    elements, atoms = element_table(data.ranges.ion_names, data.ranges.composition)
    ranged = data.species >= 0
    if data.ion_resolved is None:
        log.warning("segment: %s has no plane visibility (made before it existed): no ion is marked "
                    "undetermined; scan again to have them", data.path)
    else:
        log.info("segment: lattice planes resolved at %.1f %% of the ions", 100 * data.ion_resolved.mean())
    records = {}
    for name, method in methods.items():
        reason = method.unavailable(data)
        if reason:
            if args.method:
                raise InputError(data.path, f"method {name}: {reason}")
            log.warning("segment: %s skipped: %s", name, reason)
            continue
        t = time.time()
        res = method.run(data)
        ids = res.ion_precipitate_id
        if data.ion_resolved is not None:
            ids = mark_undetermined(ids, data.ion_resolved, data.xyz, data.species, data.voxels.plane_field)
        ids, voxel_label = _without_unranged_components(ids, data.species, res.voxel_label)
        with np.errstate(invalid="ignore", divide="ignore"):
            fraction = (data.voxel_counts((ids > 0) & ranged) / data.voxel_counts(ranged)).astype(np.float32)
        records[name] = MethodRecord(method.title, {**method.params, **res.details}, ids,
                                     precipitate_table(ids, data, atoms, voxel_label),
                                     res.ion_probability, voxel_label, res.voxel_probability,
                                     np.nan_to_num(fraction), list(data.ranges.ion_names), elements)
        log.info("segment: %s: %d precipitates, %.1f %% of ions, %.1f s", name, records[name].count,
                 100 * np.mean(ids > 0), time.time() - t)
    default = cfg.default if cfg.default in records else next(iter(records))
    l12 = records[default].ion_precipitate_id > 0
    covered = data.voxels.covered[tuple(data.ion_voxel.T)]
    settings = data.settings
    ps = cfg.phase_sdm
    try:
        sdms = phase_sdms(data.xyz, data.species, data.ranges.ion_names, {"l12": l12, "fcc": covered & ~l12},
                          ps["pairs"], settings, int(ps["max_references"]), int(ps.get("seed", 0))) \
            if ps.get("pairs") else {}
    except InputError as exc:
        raise InputError(data.range_path, exc.problem) from None
    summary = {"default": default, "comparison": comparison(records, ranged, default),
               "planes_resolved_ion_share": None if data.ion_resolved is None else float(data.ion_resolved.mean())}
    threshold = float(cfg.methods.get("paper", {}).get("threshold", 62))
    uncertain = data.voxels.uncertain(threshold, cfg.uncertain_sigmas)
    if uncertain is not None:
        summary["uncertain_voxels"] = int(uncertain.sum())
        log.info("segment: %d voxels uncertain: ensemble members disagree within %.1f sd of the paper's "
                 "threshold", summary["uncertain_voxels"], cfg.uncertain_sigmas)
    record = provenance(cfg.to_dict(), {"scan": data.path, "input": data.input_path, "range": data.range_path},
                        model_sha256=data.voxels.provenance.get("model_sha256"))
    seg = Segmentation(default, records, cfg.to_dict(), summary, record, uncertain,
                       sdms, (settings.zx_edges(), settings.z_edges()))
    write_segmentation(data.path, seg)
    t = time.time()
    write_all_analyses(data.path, analyse(data, seg), record)
    log.info("segment: analyses of %d methods, %.1f s", len(records), time.time() - t)
    from ..report.figures import plot_comparison
    stem = data.path.with_suffix("")
    with atomic_output(f"{stem}_comparison.json") as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=1))
    with atomic_output(f"{stem}_comparison.png") as tmp:
        plot_comparison(tmp, {n: r.table for n, r in records.items()}, summary["comparison"])
    return summary


def run(args):
    print(json.dumps(segment(args)["comparison"], indent=1))
