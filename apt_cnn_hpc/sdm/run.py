"""`apt-cnn sdm`: the zx- and z-SDM of a box of a reconstruction (the paper's Figure 1e/f)."""
import json
import logging

import numpy as np

from ..errors import InputError
from ..fileutil import atomic_output
from ..io import read_ions, read_ranges
from ..provenance import provenance
from .figure import plot_sdm
from .maps import region_sdm
from .settings import SDMSettings, parse_pair

log = logging.getLogger(__name__)


def box(values):
    lo, hi = values[:3], values[3:]
    if any(h <= l for l, h in zip(lo, hi)):
        raise InputError(None, f"--box needs XMIN YMIN ZMIN XMAX YMAX ZMAX with each max > min, got {values}")
    return lo, hi


def run(args):
    settings = SDMSettings.load(args.config)
    if args.pair:   # the command line wins over the config's pair
        settings = SDMSettings.from_dict({**settings.to_dict(), "pair": parse_pair(args.pair)})
    pair = list(settings.pair)
    lo, hi = box(args.box)
    ranges = read_ranges(args.range)
    ions = read_ions(args.input, drop_invalid=args.drop_invalid)
    labels = ranges.label(ions.mq)
    try:
        zx, z, n_ref = region_sdm(ions.xyz, labels, ranges.ion_names, settings, lo, hi)
    except InputError as exc:
        raise InputError(args.range, exc.problem) from None
    if n_ref == 0:
        raise InputError(args.input, f"no {pair[0]} ions inside the box {list(lo)}-{list(hi)} nm")
    prov = provenance({"sdm": settings.to_dict(), "box_nm": [list(lo), list(hi)]},
                      {"input": args.input, "range": args.range})
    with atomic_output(f"{args.out}.npz", args.overwrite) as tmp_npz, \
            atomic_output(f"{args.out}.png", args.overwrite) as tmp_png:
        with open(tmp_npz, "wb") as fh:
            np.savez(fh, z_counts=z, z_edges_nm=settings.z_edges(), zx_counts=zx,
                     dz_edges_nm=settings.zx_edges(), dx_edges_nm=settings.zx_edges(),
                     n_reference=n_ref, pair=np.array(pair), provenance_json=json.dumps(prov, default=str))
        plot_sdm(tmp_png, zx, settings.zx_edges(), settings.zx_edges(), z, settings.z_edges(),
                 f"{pair[0]}-{pair[1]}, {n_ref} reference ions, box {list(lo)}-{list(hi)} nm")
    log.info("sdm: %d reference ions, %d pairs -> %s.npz, %s.png", n_ref, int(z.sum()), args.out, args.out)
