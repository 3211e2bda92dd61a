"""`apt-cnn <stage>`: one command line for every stage; each stage reads and writes files.

Every user-facing failure is one line on stderr naming the file and the problem, exit code 2.
"""
import argparse
import logging
import os
import sys

from . import __version__
from .errors import InputError

log = logging.getLogger("apt_cnn_hpc")


def _rank() -> int:
    for var in ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"):
        if var in os.environ:
            return int(os.environ[var])
    return 0


def _setup_logging(verbose: bool):
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s rank{_rank()} %(levelname)s %(name)s: %(message)s")
    for noisy in ("numba", "matplotlib", "h5py", "ifes-apt-tc-data-modeling", "PIL", "numexpr"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _stage(target: str):
    """The function that runs a stage, "module:function" under apt_cnn_hpc, imported when called
    (so `apt-cnn --help` and light stages do not load TensorFlow or MPI)."""
    def run(args):
        import importlib
        module, func = target.split(":")
        return getattr(importlib.import_module(f"apt_cnn_hpc.{module}"), func)(args)
    return run


def _moved_inputs(s):
    """Stages that go back to the scan's reconstruction find it through the scan's provenance."""
    s.add_argument("--input", help="the scan's reconstruction, if moved (checked by SHA-256)")
    s.add_argument("--range", help="the scan's range file, if moved (checked by SHA-256)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="apt-cnn", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"apt-cnn-hpc {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="stage", required=True, metavar="STAGE")

    s = sub.add_parser("specimen", help="synthetic reconstruction with known precipitates")
    s.add_argument("--out", required=True, help="prefix: writes PREFIX.pos, PREFIX.rrng, PREFIX_truth.h5")
    s.add_argument("--config", help="YAML overriding configs/specimen.yaml")
    s.add_argument("--seed", type=int)
    s.add_argument("--shape", choices=["box", "cone"])
    s.add_argument("--size", type=float, nargs=3, metavar=("X", "Y", "Z"), help="box size in nm")
    s.add_argument("--same-composition", action="store_true",
                   help="ordered domains with exactly the matrix composition")
    s.add_argument("--stream", action="store_true",
                   help="write slab by slab without holding the specimen (any size; another draw of the ions)")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=_stage("crystal.run:run"))

    s = sub.add_parser("sdm", help="zx-SDM and z-SDM of a box of a reconstruction")
    s.add_argument("input", help="POS, ePOS, APT or CSV file")
    s.add_argument("--range", required=True, help="RRNG or RNG file")
    s.add_argument("--box", type=float, nargs=6, required=True,
                   metavar=("XMIN", "YMIN", "ZMIN", "XMAX", "YMAX", "ZMAX"), help="reference box in nm")
    s.add_argument("--pair", help="reference-partner species, e.g. Al-Li (default: the config's pair)")
    s.add_argument("--out", required=True, help="prefix: writes PREFIX.npz and PREFIX.png")
    s.add_argument("--config", help="YAML overriding configs/sdm.yaml")
    s.add_argument("--drop-invalid", action="store_true", help="discard ions with NaN/inf values")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=_stage("sdm.run:run"))

    s = sub.add_parser("orient", help="find the <011> pole, turn it onto z and calibrate z on the {022} spacing")
    s.add_argument("input", help="POS, ePOS, APT or CSV file")
    s.add_argument("--range", required=True, help="RRNG or RNG file")
    s.add_argument("--out", required=True,
                   help="OUT.pos: the oriented reconstruction; also writes OUT.orient.json and OUT.orient.png")
    s.add_argument("--roi", type=float, metavar="RADIUS_NM",
                   help="keep only the ions within this distance of the pole axis (default: every ion)")
    s.add_argument("--drop-invalid", action="store_true", help="discard ions with NaN/inf values")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=_stage("orient.run:run"))

    s = sub.add_parser("simulate", help="synthetic dictionary of labelled zx-SDMs (MPI-parallel)")
    s.add_argument("--out", required=True, help="dictionary HDF5 file")
    s.add_argument("--config", help="YAML overriding configs/library.yaml")
    s.add_argument("--sdm-config", help="YAML overriding configs/sdm.yaml")
    s.add_argument("--library", default="library", choices=["library", "library_table1"],
                   help="shipped library to start from: library (default, no shortcut) or library_table1 "
                        "(the paper's Table 1)")
    s.add_argument("--seed", type=int)
    s.add_argument("--counts", type=int, nargs="+", metavar="N",
                   help="maps per kind: N_FCC N_L12 [N_MIXED] (default: configs/library.yaml)")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=_stage("library.run:run"))

    s = sub.add_parser("train", help="train the CNN with Horovod (mpiexec -n N or srun)")
    s.add_argument("--dictionary", required=True, help="dictionary HDF5 from `simulate`")
    s.add_argument("--out", required=True, help="model directory (model.keras, model_card.json, ...)")
    s.add_argument("--extra", action="append", help="extra labelled maps from `extract` (repeatable)")
    s.add_argument("--epochs", type=int, default=7)
    s.add_argument("--batch", type=int, default=32, help="batch per rank")
    s.add_argument("--lr", type=float, default=0.001, help="RMSprop rate for one rank (x ranks)")
    s.add_argument("--folds", type=int, default=5, help="cross-validation folds (1: none)")
    s.add_argument("--kinds", nargs="+", choices=["fcc", "l12", "mixed"],
                   help="use only these kinds of dictionary rows (default: all)")
    s.add_argument("--test-fraction", type=float, default=0.1)
    s.add_argument("--positive-weight", type=float, default=1.0,
                   help="loss weight of L1_2 maps relative to FCC (1 = the paper)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    s.add_argument("--split-seed", type=int, help="seed of the train/test split (default: --seed)")
    s.add_argument("--members", type=int, default=1,
                   help="train an ensemble: K members with seeds SEED..SEED+K-1 in OUT/member_k")
    s.add_argument("--skip-heldout", action="store_true", help="no held-out specimen evaluation")
    s.add_argument("--validation", help="dictionary of another seed whose pure maps set the operating "
                                        "threshold of an uncalibrated model (default: W / (W + 1))")
    s.add_argument("--calibrate", action="store_true",
                   help="calibrate the output on the cubes of simulated specimens of other seeds (Platt "
                        "scaling); maps are then called L1_2 at 0.5")
    s.set_defaults(func=_stage("model.run:run_train"))

    s = sub.add_parser("train-ions", help="train the per-ion classifier on simulated specimens (Horovod)")
    s.add_argument("--out", required=True, help="per-ion model directory (stage1_*.keras, stage2.keras, card)")
    s.add_argument("--work", required=True,
                   help="directory caching each specimen's features (reused; one directory every rank sees)")
    s.add_argument("--specimens", type=int, default=120, help="training specimens (seeds 8001..)")
    s.add_argument("--validation", type=int, default=12, help="validation specimens for calibration (9001..)")
    s.add_argument("--size-nm", type=float, default=18.0, help="edge of each simulated cube specimen")
    s.add_argument("--rows", type=int, default=30000, help="ions drawn per training specimen")
    s.add_argument("--epochs", type=int, default=6)
    s.add_argument("--solutes", nargs=2, default=["Li", "Mg"], help="the two species whose order is read")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_stage("model.run:run_train_ions"))

    s = sub.add_parser("evaluate", help="recompute a model's card metrics (test split, held-out specimens)")
    s.add_argument("--model", required=True, help="model directory")
    s.add_argument("--dictionary", help="default: the one named in the model card")
    s.add_argument("--validation", help="dictionary setting the operating threshold (default: the card's)")
    s.set_defaults(func=_stage("model.run:run_evaluate"))

    s = sub.add_parser("extract", help="labelled maps at given cubes of a reconstruction (case 2)")
    s.add_argument("input", help="POS, ePOS, APT or CSV file")
    s.add_argument("--range", required=True)
    s.add_argument("--cubes", required=True, help="CSV of cube lower corners x0,y0,z0 in nm")
    s.add_argument("--label", required=True, choices=["fcc", "l12"])
    s.add_argument("--augment", type=int, default=7, help="maps per cube, tilts over +-1 degree")
    s.add_argument("--out", required=True)
    s.add_argument("--config", help="YAML overriding configs/sdm.yaml")
    s.add_argument("--drop-invalid", action="store_true")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=_stage("extract.run:run"))

    s = sub.add_parser("explain", help="feature maps and Grad-CAM of a model (Figure 7)")
    s.add_argument("--model", required=True, help="model directory")
    s.add_argument("--maps", required=True, help="dictionary or extract file")
    s.add_argument("--index", type=int, nargs="+", help="rows to explain (default: first FCC and first L1_2)")
    s.add_argument("--out", required=True, help="output directory for PNGs")
    s.set_defaults(func=_stage("explain.run:run"))

    s = sub.add_parser("scan", help="classify every 4 nm cube; 1 nm voxel map (mpiexec -n N or srun)")
    s.add_argument("input", help="POS, ePOS, APT or CSV file")
    s.add_argument("--range", required=True)
    s.add_argument("--out", required=True, nargs="+", help="SCAN.h5 (+ SCAN.xdmf for ParaView); one per --model")
    s.add_argument("--model", nargs="+", help="model directory (default: models/default); several: one scan file "
                                              "per model from maps made once")
    s.add_argument("--ensemble", type=int, default=1, metavar="K",
                   help="use the first K members of an ensemble --model (train --members); "
                        "writes /voxels/probability_sum_sd")
    s.add_argument("--config", help="YAML overriding configs/scan.yaml")
    s.add_argument("--drop-invalid", action="store_true")
    s.add_argument("--memory-budget", type=float, metavar="MB",
                   help="memory per rank the cube maps are tiled to fit (default: memory_budget_mb of scan.yaml)")
    s.add_argument("--writer", choices=("auto", "mpio", "serial"),
                   help="auto: parallel HDF5 when h5py has MPI | mpio | serial (default: writer of scan.yaml)")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=_stage("scan.run:run"))

    s = sub.add_parser("segment", help="precipitates from a scan by every recognition method; phase SDMs")
    s.add_argument("scan", help="SCAN.h5 from `scan` (updated in place, atomically)")
    s.add_argument("--method", nargs="+", metavar="NAME",
                   help="run only these methods (default: every method of configs/segment.yaml)")
    s.add_argument("--set", action="append", metavar="METHOD.KEY=VALUE", default=[],
                   help="override a setting, e.g. methods.paper.threshold=60 or default=paper (repeatable)")
    _moved_inputs(s)
    s.add_argument("--config", help="YAML overriding configs/segment.yaml")
    s.add_argument("--overwrite", action="store_true", help="replace an earlier segmentation")
    s.set_defaults(func=_stage("segment.run:run"))

    s = sub.add_parser("export", help="a segmented scan as NeXus (NXapm): reconstruction, ranging, precipitates")
    s.add_argument("scan", help="segmented SCAN.h5")
    s.add_argument("--nexus", required=True, metavar="OUT.nxs",
                   help="NeXus file: NXapm entry (reconstruction, ranging) and NXapm_paraprobe_clusterer_results "
                        "entry (per-ion labels, precipitate table, voxel L1_2 map); needs apt-cnn-hpc[nexus]")
    s.add_argument("--method", metavar="NAME", help="recognition method to export (default: the segmentation's default)")
    _moved_inputs(s)
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=_stage("export.run:run"))

    s = sub.add_parser("score", help="per-ion F1 (with the oracle's), detection and radius error vs truth")
    s.add_argument("scan", help="segmented SCAN.h5")
    s.add_argument("--truth", required=True, help="ground truth HDF5 of `apt-cnn specimen` (PREFIX_truth.h5)")
    _moved_inputs(s)
    s.add_argument("--out", help="also write the scores to this JSON file")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=_stage("segment.score:run"))

    s = sub.add_parser("report", help="figures, summary.json and index.html of a segmented scan")
    s.add_argument("scan", help="segmented SCAN.h5")
    s.add_argument("--out", required=True, help="output directory (index.html, PNGs, summary.json)")
    s.add_argument("--score", help="JSON from `apt-cnn score --out` to include")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=_stage("report.build:run"))

    s = sub.add_parser("reprocess", help="scan -> segment -> report every new APT run of an inbox (for cron)")
    s.add_argument("--inbox", required=True, help="folder of POS/ePOS/APT files, each with a .rrng/.rng of its stem")
    s.add_argument("--outbox", required=True, help="results: NAME/ per run and manifest.json")
    s.add_argument("--ranks", type=int, default=int(os.environ.get("SLURM_NTASKS", "1")),
                   help="MPI ranks of each scan (default $SLURM_NTASKS or 1)")
    s.add_argument("--launcher", help="command that starts the scan's ranks, e.g. 'srun --mpi=pmix' "
                                      "(default: mpiexec -n RANKS)")
    s.add_argument("--model", help="model directory (default models/default)")
    s.add_argument("--scan-config", help="YAML overriding configs/scan.yaml")
    s.add_argument("--segment-config", help="YAML overriding configs/segment.yaml")
    s.set_defaults(func=_stage("reprocess.run:reprocess"))
    return p


def _abort_others(code: int):
    """A failure only this rank knows about: stop every rank at once instead of leaving them
    waiting in a collective call."""
    if "mpi4py.MPI" in sys.modules:
        from mpi4py import MPI
        if MPI.Is_initialized() and not MPI.Is_finalized() and MPI.COMM_WORLD.Get_size() > 1:
            sys.stderr.flush()
            MPI.COMM_WORLD.Abort(code)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    where = f"apt-cnn {args.stage}" + (f" (rank {_rank()})" if _rank() else "")
    try:
        rc = args.func(args)
    except InputError as exc:
        collective = getattr(exc, "collective", False)
        if _rank() == 0 or not collective:
            print(f"{where}: error: {exc}", file=sys.stderr)
        if not collective:
            _abort_others(2)
        return 2
    except OSError as exc:   # full disk, unwritable directory, file vanished while running
        name = exc.filename or ""
        print(f"{where}: error: {name}{': ' if name else ''}{exc.strerror or exc}", file=sys.stderr)
        _abort_others(2)
        return 2
    except KeyboardInterrupt:
        print(f"{where}: interrupted", file=sys.stderr)
        _abort_others(130)
        return 130
    except Exception as exc:  # a bug: one line (traceback with -v) and no hanging ranks
        if args.verbose:
            import traceback
            traceback.print_exc()
        print(f"{where}: internal error: {type(exc).__name__}: {exc} (rerun with -v for details)",
              file=sys.stderr)
        _abort_others(1)
        return 1
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
