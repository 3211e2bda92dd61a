"""`apt-cnn specimen`: a synthetic reconstruction with known precipitates (POS, RRNG, truth)."""
import logging

from ..config import load_config
from ..parallel import progress
from .specimen import make_specimen, stream_specimen, write_specimen

log = logging.getLogger(__name__)


def run(args):
    cfg = load_config("specimen", args.config)
    for key, value in (("seed", args.seed), ("shape", args.shape), ("size_nm", args.size)):
        if value is not None:
            cfg[key] = value
    if args.same_composition:
        cfg["same_composition"] = True
    if args.stream or cfg.get("stream", False):
        with progress(0, "specimen", unit="slab") as bar:
            spec = stream_specimen(cfg, args.out, overwrite=args.overwrite, bar=bar)
        log.info("specimen: %d ions streamed in 4 nm slabs, %d precipitates -> %s.pos, .rrng, _truth.h5",
                 spec["n_ions"], len(spec["radii"]), args.out)
        return
    spec = make_specimen(cfg)
    paths = write_specimen(spec, args.out, cfg, overwrite=args.overwrite)
    log.info("specimen: %d ions, %d precipitates (mean radius %.2f nm) -> %s",
             len(spec["mq"]), len(spec["radii"]), float(spec["radii"].mean()) if len(spec["radii"]) else 0.0,
             ", ".join(paths))
