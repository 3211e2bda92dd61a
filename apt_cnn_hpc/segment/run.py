"""`apt-cnn segment`: precipitates from the voxel map (CNN rule, isocomposition baseline, optional
boundary refinement), phase SDMs, written into the scan file atomically.

  /precipitates/<method>/   method = cnn | isocomposition | cnn_refined
      voxel_label int32 [nx,ny,nz] (0 = matrix), radius_nm (n), centroid_nm (n,3), volume_nm3,
      n_voxels, ion_count, ion_count_per_species (n, species; attr species),
      composition_at_pct (n, elements; attr elements), touches_edge
  /precipitates/uncertain   bool [nx,ny,nz] (ensemble scans): members disagree about the threshold
  /precipitates             attrs: comparison (JSON), config (JSON), provenance (JSON)
  /phase_sdm/<l12|fcc>/<pair>/zx [dz, dx], z [dz]; attrs n_reference, *_edges_nm
"""
import json
import logging
from pathlib import Path

import h5py
import numpy as np

from ..config import load_config, positive
from ..errors import InputError
from ..fileutil import atomic_h5, atomic_output
from ..provenance import provenance
from ..sdm import SDMSettings, parse_pair
from .components import element_table, label_components, precipitate_table
from .inputs import load_scan_data
from .isocomposition import iso_mask, parse_iso
from .phase_sdm import phase_sdms
from .refine import refine_mask
from .voxels import ion_labels, read_cubes

log = logging.getLogger(__name__)
GROUPS = ("precipitates", "phase_sdm")


def segment_config(path, threshold=None, connectivity=None, iso=None, refine=None) -> dict:
    """configs/segment.yaml + user YAML + command-line overrides, validated."""
    cfg = load_config("segment", path)
    where = cfg.get("_source", "segment config")
    if threshold is not None:
        cfg["threshold"] = threshold
    if connectivity is not None:
        cfg["connectivity"] = connectivity
    if iso:
        el, pct = parse_iso(iso)
        cfg["isocomposition"].update(element=el, at_pct=pct)
    if refine is not None:
        cfg["refine"]["enabled"] = refine
    positive(cfg, "threshold", where)
    positive(cfg, "uncertain_sigmas", where)
    if cfg["connectivity"] not in (1, 2, 3):
        raise InputError(where, f"connectivity must be 1, 2 or 3, got {cfg['connectivity']}")
    if int(positive(cfg, "min_voxels", where)) != cfg["min_voxels"]:
        raise InputError(where, f"min_voxels must be a whole number >= 1, got {cfg['min_voxels']}")
    positive(cfg["isocomposition"], "at_pct", where)
    positive(cfg["isocomposition"], "delocalization_nm", where, allow_zero=True)
    positive(cfg["refine"], "band_voxels", where)
    positive(cfg["phase_sdm"], "max_references", where)
    for text in cfg["phase_sdm"]["pairs"]:
        parse_pair(text)
    return cfg


def methods(data, cfg: dict, elements: list, atoms: np.ndarray) -> dict:
    """Voxel masks per method."""
    vm = data.voxels
    if not 0 < cfg["threshold"] < vm.full_window:
        raise InputError(None, f"threshold must lie between 0 and {vm.full_window} (the full window), "
                               f"got {cfg['threshold']}")
    plain = vm.mask(cfg["threshold"])
    iso = cfg["isocomposition"]
    try:
        iso_m, _ = iso_mask(vm.grid, data.xyz, data.species, elements, atoms, iso["element"], iso["at_pct"],
                            iso["delocalization_nm"])
    except InputError as exc:
        raise InputError(data.range_path, exc.problem) from None
    out = {"cnn": plain, "isocomposition": iso_m & (vm.ion_count > 0)}
    if cfg["refine"]["enabled"]:
        origins, prob = read_cubes(data.path)
        cube_vox = vm.grid.index(origins + 0.5 * vm.grid.voxel_nm)
        response = vm.provenance.get("model_card", {}).get("metrics", {}).get("response", {})
        try:
            out["cnn_refined"] = refine_mask(plain, vm.covered, cube_vox, prob, round(vm.full_window ** (1 / 3)),
                                             response, int(cfg["refine"]["band_voxels"]))
        except InputError as exc:
            raise InputError(data.path, exc.problem) from None
    return out


def comparison(tables: dict, masks: dict) -> dict:
    """Count, mean radius +- sd and overlap of each method with the CNN's."""
    out = {}
    for name, t in tables.items():
        r = t["radius_nm"]
        inter = np.count_nonzero(masks[name] & masks["cnn"])
        union = np.count_nonzero(masks[name] | masks["cnn"])
        out[name] = {"count": int(len(r)), "count_not_at_edge": int(np.count_nonzero(~t["touches_edge"])),
                     "mean_radius_nm": float(r.mean()) if len(r) else None,
                     "sd_radius_nm": float(r.std(ddof=1)) if len(r) > 1 else None,
                     "volume_fraction": float(masks[name].sum() / max(masks["cnn"].size, 1)),
                     "voxel_overlap_with_cnn_iou": inter / union if union else None}
    return out


def _write_table(g, table: dict, labels, ion_names, elements):
    g.create_dataset("voxel_label", data=labels, compression="gzip", compression_opts=1)
    for k, v in table.items():
        g.create_dataset(k, data=v)
    g["ion_count_per_species"].attrs["species"] = list(ion_names)
    g["composition_at_pct"].attrs["elements"] = list(elements)
    g["radius_nm"].attrs["doc"] = "equivalent-sphere radius of the component's voxel volume"


def write_segmentation(path: Path, tables, labels, sdms, settings: SDMSettings, ion_names, elements,
                       attrs: dict, uncertain=None):
    """A new scan file: everything of the old one but an earlier segmentation, plus the new groups;
    renamed over the original only when complete, so the scan is never half-updated."""
    with h5py.File(path, "r") as src, atomic_h5(path) as f:
        for name in src:
            if name not in GROUPS:
                src.copy(src[name], f, name=name)
        for k, v in src.attrs.items():
            f.attrs[k] = v
        p = f.create_group("precipitates")
        for k, v in attrs.items():
            p.attrs[k] = v
        for method, table in tables.items():
            _write_table(p.create_group(method), table, labels[method], ion_names, elements)
        for phase, pairs in sdms.items():
            for pair, (zx, z, n_ref) in pairs.items():
                g = f.create_group(f"phase_sdm/{phase}/{pair}")
                g.create_dataset("zx", data=zx)
                g.create_dataset("z", data=z)
                g.attrs["n_reference"] = n_ref
                g.attrs["dz_dx_edges_nm"] = settings.zx_edges()
                g.attrs["z_edges_nm"] = settings.z_edges()
        if uncertain is not None:
            p.create_dataset("uncertain", data=uncertain, compression="gzip", compression_opts=1)


def _segmented(path) -> bool:
    try:
        with h5py.File(path, "r") as f:
            return "precipitates" in f
    except OSError:
        return False     # missing or not HDF5: reading it says so


def segment(args) -> dict:
    cfg = segment_config(args.config, args.threshold, args.connectivity, args.iso, args.refine)
    if _segmented(args.scan) and not args.overwrite:
        raise InputError(args.scan, "already segmented (pass --overwrite to replace /precipitates)")
    data = load_scan_data(args.scan, args.input, args.range)
    vm = data.voxels
    elements, atoms = element_table(data.ranges.ion_names, data.ranges.composition)
    masks = methods(data, cfg, elements, atoms)
    labels, tables = {}, {}
    for name, mask in masks.items():
        labels[name] = label_components(mask, cfg["connectivity"], int(cfg["min_voxels"]))
        tables[name] = precipitate_table(labels[name], vm.grid, data.xyz, data.species,
                                         data.ranges.ion_names, atoms, vm.covered)
        log.info("segment: %s: %d precipitates", name, len(tables[name]["radius_nm"]))
    l12 = ion_labels(data.xyz, vm.grid, labels["cnn"] > 0)
    fcc = ion_labels(data.xyz, vm.grid, vm.covered) & ~l12
    settings = SDMSettings.from_dict(vm.provenance["config"]["sdm"])
    ps = cfg["phase_sdm"]
    try:
        sdms = phase_sdms(data.xyz, data.species, data.ranges.ion_names, {"l12": l12, "fcc": fcc}, ps["pairs"],
                          settings, int(ps["max_references"]), int(ps["seed"]))
    except InputError as exc:
        raise InputError(data.range_path, exc.problem) from None
    summary = {"comparison": comparison(tables, masks)}
    uncertain = vm.uncertain(cfg["threshold"], cfg["uncertain_sigmas"])
    if uncertain is not None:
        summary["uncertain_voxels"] = int(uncertain.sum())
        summary["uncertain_voxels_labelled_l12"] = int((uncertain & masks["cnn"]).sum())
        log.info("segment: %d voxels uncertain (%d of them labelled L1_2): ensemble members disagree "
                 "within %.1f sd of the threshold", summary["uncertain_voxels"],
                 summary["uncertain_voxels_labelled_l12"], cfg["uncertain_sigmas"])
    config = {k: v for k, v in cfg.items() if k != "_source"}
    record = provenance(config, {"scan": data.path, "input": data.input_path, "range": data.range_path},
                        model_sha256=vm.provenance.get("model_sha256"))
    write_segmentation(data.path, tables, labels, sdms, settings, data.ranges.ion_names, elements,
                       {"comparison": json.dumps(summary), "config": json.dumps(config),
                        "provenance": json.dumps(record, default=str)}, uncertain)
    from ..report.figures import plot_comparison
    stem = data.path.with_suffix("")
    with atomic_output(f"{stem}_comparison.json") as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=1))
    with atomic_output(f"{stem}_comparison.png") as tmp:
        plot_comparison(tmp, tables, summary["comparison"])
    return summary
