"""`apt-cnn orient`: turn a reconstruction's <011> pole onto z and calibrate z on the {022}
spacing; writes OUT.pos (every ion, in the input's record order, unless --roi crops a cylinder
about the pole), OUT.orient.json (the transform and how sure it is) and OUT.orient.png, all or
nothing: when no pole is found it stops with one line and writes none of them."""
import json
import logging
import time
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..fileutil import atomic_output, check_output
from ..io import read_ions, read_ranges, write_pos
from ..provenance import provenance
from ..sdm.lattice import SIGNIFICANT
from .figure import central_z_sdm, plot_orient
from .pole import MAX_TILT_DEG, SEARCH_ZSCORE, SPACING_022_NM, find_pole

log = logging.getLogger(__name__)
MIN_RANGED = 2000                 # fewer ranged ions than this cannot show planes in 2 nm balls


def output_paths(out) -> tuple[Path, Path, Path]:
    """OUT.pos -> (OUT.pos, OUT.orient.json, OUT.orient.png)."""
    out = Path(out)
    if out.suffix.lower() != ".pos":
        raise InputError(out, "--out must name a .pos file (the oriented reconstruction)")
    stem = out.with_suffix("")
    return out, Path(f"{stem}.orient.json"), Path(f"{stem}.orient.png")


def run(args):
    t0 = time.perf_counter()
    paths = output_paths(args.out)
    for p in paths:
        check_output(p, args.overwrite)
    if args.roi is not None and not args.roi > 0:
        raise InputError(None, f"--roi must be a radius > 0 nm, got {args.roi}")
    ranges = read_ranges(args.range)
    ions = read_ions(args.input, drop_invalid=args.drop_invalid)
    labels = ranges.label(ions.mq)
    ranged = labels >= 0
    if ranged.sum() < MIN_RANGED:
        raise InputError(args.input, f"only {int(ranged.sum())} ions fall inside the ranges of {args.range} "
                                     f"(orient needs >= {MIN_RANGED})")
    try:
        o = find_pole(ions.xyz, ranged)
    except InputError as exc:
        raise InputError(args.input, exc.problem) from None
    if not o.found:
        raise InputError(args.input, f"no <011> pole found within {MAX_TILT_DEG:g} deg of z: plane signal "
                                     f"{o.plane_signal:.2f} (needs >= {SIGNIFICANT:g}), search peak "
                                     f"{o.search.zscore:.1f} sd (needs >= {SEARCH_ZSCORE:g}); the {{022}} planes "
                                     "are not resolved; nothing written")
    new = o.transform(ions.xyz)
    keep = np.ones(len(new), bool) if args.roi is None else np.hypot(new[:, 0], new[:, 1]) <= args.roi
    if not keep.any():
        raise InputError(None, f"--roi {args.roi} nm keeps no ion")
    names = ranges.ion_names
    species = names[int(np.argmax(np.bincount(labels[ranged], minlength=len(names))))]
    before = central_z_sdm(ions.xyz, labels, names, o.centre_nm, species)
    after = central_z_sdm(new, labels, names, np.zeros(3), species)
    prov = provenance({"spacing_expected_nm": SPACING_022_NM, "roi_radius_nm": args.roi},
                      {"input": args.input, "range": args.range})
    record = {
        **o.to_dict(),
        "roi_radius_nm": args.roi,
        "ions_input": int(len(new)),
        "ions_output": int(keep.sum()),
        "record_order": "the input's, ions outside --roi left out" if args.roi else "the input's, every ion",
        "input": str(args.input),
        "input_sha256": prov["inputs"]["input"]["sha256"],
        "software_version": prov["software"]["apt_cnn_hpc"],
        "seconds": round(time.perf_counter() - t0, 2),
        "provenance": prov,
    }
    pos_path, json_path, png_path = paths
    with atomic_output(pos_path, args.overwrite) as tmp_pos, \
            atomic_output(json_path, args.overwrite) as tmp_json, \
            atomic_output(png_path, args.overwrite) as tmp_png:
        write_pos(tmp_pos, new[keep], ions.mq[keep])
        with open(tmp_json, "w") as fh:
            json.dump(record, fh, indent=1, default=str)
        plot_orient(tmp_png, o, before, after,
                    f"{Path(args.input).name}: pole {np.round(o.pole_in_input, 4).tolist()} ({o.tilt_deg:.2f} deg), "
                    f"spacing {o.spacing_measured_nm:.4f} nm -> {o.spacing_expected_nm:.4f} nm "
                    f"(z x {o.z_scale:.4f}), plane signal {o.plane_signal:.1f}")
    log.info("orient: pole %s, tilt %.2f deg, spacing %.4f nm, z scale %.4f, plane signal %.1f, %d of %d ions "
             "-> %s (%.1f s)", np.round(o.pole_in_input, 4).tolist(), o.tilt_deg, o.spacing_measured_nm, o.z_scale,
             o.plane_signal, int(keep.sum()), len(new), ", ".join(map(str, paths)), time.perf_counter() - t0)
