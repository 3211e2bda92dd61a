"""`apt-cnn simulate`: the synthetic dictionary, on every MPI rank."""
from ..config import load_config
from ..parallel import comm_world
from ..sdm import SDMSettings
from .simulate import simulate_dictionary


def run(args):
    cfg = load_config(args.library, args.config)
    if args.seed is not None:
        cfg["seed"] = args.seed
    if args.counts:
        cfg["counts"] = dict(zip(("fcc", "l12", "mixed"), args.counts))
    simulate_dictionary(cfg, SDMSettings.load(args.sdm_config), args.out, comm_world(), overwrite=args.overwrite)
