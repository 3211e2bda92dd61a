"""`apt-cnn extract`: labelled maps at given cubes of a reconstruction (the paper's case 2)."""
import logging

from ..contracts.dictionary import write_extract
from ..errors import InputError
from ..io import read_ions, read_ranges
from ..provenance import provenance
from ..sdm import SDMSettings
from .cubes import extract_maps, read_cube_list

log = logging.getLogger(__name__)


def run(args):
    if args.augment < 1:
        raise InputError(None, "--augment must be >= 1")
    settings = SDMSettings.load(args.config)
    cubes = read_cube_list(args.cubes)
    ranges = read_ranges(args.range)
    ions = read_ions(args.input, drop_invalid=args.drop_invalid)
    try:
        maps, params = extract_maps(ions.xyz, ranges.label(ions.mq), ranges.ion_names, settings,
                                    cubes, args.augment)
    except InputError as exc:
        raise InputError(args.input if "cube at" in exc.problem else args.range, exc.problem) from None
    prov = provenance({"sdm": settings.to_dict(), "label": args.label, "augment": args.augment},
                      {"input": args.input, "range": args.range, "cubes": args.cubes})
    write_extract(args.out, maps, params, 1 if args.label == "l12" else 0, settings, prov, args.overwrite)
    log.info("extract: %d cubes x %d -> %d %s maps in %s", len(cubes), args.augment, len(maps),
             args.label, args.out)
