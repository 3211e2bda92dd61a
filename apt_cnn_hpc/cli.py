"""`apt-cnn <stage>`: one command line for every stage; each stage reads and writes files.

Every user-facing failure is one line on stderr naming the file and the problem, exit code 2.
"""
import argparse
import json
import logging
import os
import sys
from pathlib import Path

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


def _box(values):
    lo, hi = values[:3], values[3:]
    if any(h <= l for l, h in zip(lo, hi)):
        raise InputError(None, f"--box needs XMIN YMIN ZMIN XMAX YMAX ZMAX with each max > min, got {values}")
    return lo, hi


def cmd_specimen(args):
    from .config import load_config
    from .crystal.specimen import make_specimen, write_specimen
    cfg = load_config("specimen", args.config)
    if args.seed is not None:
        cfg["seed"] = args.seed
    if args.same_composition:
        cfg["same_composition"] = True
    if args.shape:
        cfg["shape"] = args.shape
    if args.size:
        cfg["size_nm"] = args.size
    spec = make_specimen(cfg)
    paths = write_specimen(spec, args.out, cfg, overwrite=args.overwrite)
    log.info("specimen: %d ions, %d precipitates (mean radius %.2f nm) -> %s",
             len(spec["mq"]), len(spec["radii"]), float(spec["radii"].mean()) if len(spec["radii"]) else 0.0,
             ", ".join(paths))


def cmd_sdm(args):
    import numpy as np

    from .fileutil import atomic_output
    from .io import read_ions, read_ranges
    from .provenance import provenance
    from .sdm import SDMSettings, parse_pair, region_sdm
    from .sdm.figure import plot_sdm
    settings = SDMSettings.load(args.config)
    if args.pair:   # the command line wins over the config's pair
        settings = SDMSettings.from_dict({**settings.to_dict(), "pair": parse_pair(args.pair)})
    pair = list(settings.pair)
    lo, hi = _box(args.box)
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


def cmd_simulate(args):
    from .config import load_config
    from .library import simulate_dictionary
    from .parallel import comm_world
    from .sdm import SDMSettings
    cfg = load_config("library", args.config)
    if args.seed is not None:
        cfg["seed"] = args.seed
    if args.counts:
        cfg["counts"] = dict(zip(("fcc", "l12", "mixed"), args.counts))
    settings = SDMSettings.load(args.sdm_config)
    comm = comm_world()
    simulate_dictionary(cfg, settings, args.out, comm, overwrite=args.overwrite)


def cmd_train(args):
    from .model.train import train
    from .parallel import comm_world
    if args.epochs < 1 or args.batch < 1 or args.folds < 1 or not 0 <= args.test_fraction < 1 \
            or args.positive_weight <= 0:
        raise InputError(None, "--epochs, --batch and --folds must be >= 1, --test-fraction in [0, 1) "
                               "and --positive-weight > 0")
    if args.members < 1:
        raise InputError(None, "--members must be >= 1")
    if args.split_seed is None:   # every member of an ensemble keeps the one split
        args.split_seed = args.seed
    if args.members == 1:
        out = train(args, comm_world())
        log.info("train: model in %s", out)
        return
    from .model.ensemble import write_ensemble
    base, seeds, names = Path(args.out), [], []
    for k in range(args.members):   # one member after the other, each on all ranks
        seeds.append(args.seed + k)
        names.append(f"member_{k}")
        member = {"seed": seeds[-1], "out": str(base / names[-1])}   # same split, other start and order
        train(argparse.Namespace(**{**vars(args), **member}), comm_world())
    if _rank() == 0:
        write_ensemble(base, names, seeds)
    log.info("train: ensemble of %d members in %s", args.members, base)


def cmd_extract(args):
    from .extract import extract_maps, read_cube_list
    from .extract.cubes import write_extract
    from .io import read_ions, read_ranges
    from .provenance import provenance
    from .sdm import SDMSettings
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


def cmd_explain(args):
    import numpy as np

    from .explain import explain_maps
    from .model.card import load_card, load_model
    from .model.dataset import open_maps, read_rows
    load_card(args.model)
    model = load_model(args.model)
    f, _, n = open_maps(args.maps)
    with f:
        if args.index:
            idx = np.asarray(args.index)
            if np.any((idx < 0) | (idx >= n)):
                raise InputError(args.maps, f"--index must be within 0..{n - 1}")
        else:
            labels = f["labels"][:]
            idx = np.asarray([int(np.argmax(labels == k)) for k in (0, 1) if np.any(labels == k)])
        maps, labels = read_rows(f, idx)
    out = args.out
    import os
    os.makedirs(out, exist_ok=True)
    files = explain_maps(model, maps, labels, out)
    log.info("explain: %d figures in %s", len(files), out)


def cmd_scan(args):
    from .parallel import comm_world
    from .scan import scan
    scan(args, comm_world())


def cmd_segment(args):
    from .segment.run import segment
    summary = segment(args)
    print(json.dumps(summary["comparison"], indent=1))


def cmd_score(args):
    from .fileutil import atomic_output
    from .segment.score import score_scan
    result = score_scan(args.scan, args.truth, args.input, args.range)
    text = json.dumps(result, indent=1)
    if args.out:
        with atomic_output(args.out, args.overwrite) as tmp:
            with open(tmp, "w") as fh:
                fh.write(text)
    print(text)
    o = result["oracle"]["f1"]
    for name, m in result["methods"].items():
        log.info("score: %-15s F1 %.3f (oracle %.3f, ratio %.2f), P %.3f, R %.3f, detected %d/%d",
                 name, m["f1"], o, m["f1_over_oracle"] or 0, m["precision"], m["recall"], m["detected"],
                 m["precipitates_inside"])


def cmd_report(args):
    from .report.build import build_report
    index = build_report(args.scan, args.out, args.score, args.overwrite)
    print(f"report: {index.resolve()}")


def cmd_reprocess(args):
    from .reprocess.run import reprocess
    return reprocess(args)


def cmd_evaluate(args):
    from .model.evaluate import reevaluate
    m = reevaluate(args.model, args.dictionary, args.validation)
    log.info("evaluate: %s", {k: v for k, v in m.items() if k != "response"})


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
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=cmd_specimen)

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
    s.set_defaults(func=cmd_sdm)

    s = sub.add_parser("simulate", help="synthetic dictionary of labelled zx-SDMs (MPI-parallel)")
    s.add_argument("--out", required=True, help="dictionary HDF5 file")
    s.add_argument("--config", help="YAML overriding configs/library.yaml")
    s.add_argument("--sdm-config", help="YAML overriding configs/sdm.yaml")
    s.add_argument("--seed", type=int)
    s.add_argument("--counts", type=int, nargs="+", metavar="N",
                   help="maps per kind: N_FCC N_L12 [N_MIXED] (default: configs/library.yaml)")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=cmd_simulate)

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
                                        "threshold (default: W / (W + 1) of --positive-weight)")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", help="recompute a model's card metrics (test split, held-out specimens)")
    s.add_argument("--model", required=True, help="model directory")
    s.add_argument("--dictionary", help="default: the one named in the model card")
    s.add_argument("--validation", help="dictionary setting the operating threshold (default: the card's)")
    s.set_defaults(func=cmd_evaluate)

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
    s.set_defaults(func=cmd_extract)

    s = sub.add_parser("explain", help="feature maps and Grad-CAM of a model (Figure 7)")
    s.add_argument("--model", required=True, help="model directory")
    s.add_argument("--maps", required=True, help="dictionary or extract file")
    s.add_argument("--index", type=int, nargs="+", help="rows to explain (default: first FCC and first L1_2)")
    s.add_argument("--out", required=True, help="output directory for PNGs")
    s.set_defaults(func=cmd_explain)

    s = sub.add_parser("scan", help="classify every 4 nm cube; 1 nm voxel map (mpiexec -n N or srun)")
    s.add_argument("input", help="POS, ePOS, APT or CSV file")
    s.add_argument("--range", required=True)
    s.add_argument("--out", required=True, help="SCAN.h5 (+ SCAN.xdmf for ParaView)")
    s.add_argument("--model", help="model directory (default: models/default)")
    s.add_argument("--ensemble", type=int, default=1, metavar="K",
                   help="use the first K members of an ensemble --model (train --members); "
                        "writes /voxels/probability_sum_sd")
    s.add_argument("--config", help="YAML overriding configs/scan.yaml")
    s.add_argument("--drop-invalid", action="store_true")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=cmd_scan)

    s = sub.add_parser("segment", help="precipitates from a scan: CNN rule, isocomposition, phase SDMs")
    s.add_argument("scan", help="SCAN.h5 from `scan` (updated in place, atomically)")
    s.add_argument("--threshold", type=float, help="voxel sum scaled to a full window (default 62)")
    s.add_argument("--connectivity", type=int, choices=[1, 2, 3], help="1 faces, 2 edges, 3 corners")
    s.add_argument("--iso", metavar="EL:AT_PCT", help="isocomposition baseline, e.g. Li:8")
    s.add_argument("--refine", action=argparse.BooleanOptionalAction, default=None,
                   help="also label boundary voxels by deconvolution (cnn_refined)")
    _moved_inputs(s)
    s.add_argument("--config", help="YAML overriding configs/segment.yaml")
    s.add_argument("--overwrite", action="store_true", help="replace an earlier segmentation")
    s.set_defaults(func=cmd_segment)

    s = sub.add_parser("score", help="per-ion F1 (with the oracle's), detection and radius error vs truth")
    s.add_argument("scan", help="segmented SCAN.h5")
    s.add_argument("--truth", required=True, help="ground truth HDF5 of `apt-cnn specimen` (PREFIX_truth.h5)")
    _moved_inputs(s)
    s.add_argument("--out", help="also write the scores to this JSON file")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=cmd_score)

    s = sub.add_parser("report", help="figures, summary.json and index.html of a segmented scan")
    s.add_argument("scan", help="segmented SCAN.h5")
    s.add_argument("--out", required=True, help="output directory (index.html, PNGs, summary.json)")
    s.add_argument("--score", help="JSON from `apt-cnn score --out` to include")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=cmd_report)

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
    s.set_defaults(func=cmd_reprocess)
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
