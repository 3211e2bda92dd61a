"""`apt-cnn train` (one model or an ensemble of K members) and `apt-cnn evaluate`."""
import argparse
import logging
from pathlib import Path

from ..errors import InputError
from ..parallel import comm_world, is_root

log = logging.getLogger(__name__)


def run_train(args):
    from .train import train
    if args.epochs < 1 or args.batch < 1 or args.folds < 1 or not 0 <= args.test_fraction < 1 \
            or args.positive_weight <= 0:
        raise InputError(None, "--epochs, --batch and --folds must be >= 1, --test-fraction in [0, 1) "
                               "and --positive-weight > 0")
    if args.members < 1:
        raise InputError(None, "--members must be >= 1")
    if args.split_seed is None:   # every member of an ensemble keeps the one split
        args.split_seed = args.seed
    comm = comm_world()
    if args.members == 1:
        log.info("train: model in %s", train(args, comm))
        return
    from .ensemble import write_ensemble
    base, seeds, names = Path(args.out), [], []
    for k in range(args.members):   # one member after the other, each on all ranks
        seeds.append(args.seed + k)
        names.append(f"member_{k}")
        member = {"seed": seeds[-1], "out": str(base / names[-1])}   # same split, other start and order
        train(argparse.Namespace(**{**vars(args), **member}), comm)
    if is_root(comm):
        write_ensemble(base, names, seeds)
    log.info("train: ensemble of %d members in %s", args.members, base)


def run_train_ions(args):
    from ..parallel.mpi import configure_tensorflow
    from .ion_train import train_ions
    if min(args.specimens, args.validation, args.rows, args.epochs) < 1 or args.size_nm < 8:
        raise InputError(None, "--specimens, --validation, --rows and --epochs must be >= 1 and --size-nm >= 8")
    comm = comm_world()
    configure_tensorflow(comm)
    if comm.Get_size() > 1:
        import horovod.tensorflow as hvd
        hvd.init(comm=comm)
    train_ions(args, comm)


def run_evaluate(args):
    from .evaluate import reevaluate
    m = reevaluate(args.model, args.dictionary, args.validation)
    log.info("evaluate: %s", {k: v for k, v in m.items() if not isinstance(v, (dict, list))})
