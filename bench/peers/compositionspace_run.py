#!/usr/bin/env python3
"""Run the peer tool CompositionSpace (PyPI compositionspace 0.1.4) on a POS + RRNG pair
and write per-ion labels for benchmarking.

Run it with the python of the venv made by bench/peers/setup_compositionspace.sh (never the
project's venv: this script does not import apt_cnn_hpc):

    out/peers/compositionspace-venv/bin/python bench/peers/compositionspace_run.py \
        --pos S.pos --range S.rrng --out labels.npz [--voxel-nm 1.5] [--components 3] \
        [--element Li] [--workdir DIR]

It drives CompositionSpace's own pipeline exactly as its example notebook (FullWorkflow.ipynb)
does, configured through its own YAML config file (written to the work directory):

    ProcessPreparation(config, results).run(pos, rrng)   # voxelization/edge_length
    ProcessAutomatedPhaseAssignment(config, results).run()  # only if autophase/use
    ProcessSegmentation(config, results).run()            # PCA + GMM for 1..n_max_ic_cluster
    ProcessClustering(config, results).run()              # DBSCAN per GMM phase

Everything is exchanged through its NeXus/HDF5 results file (NXapm_compositionspace_results),
from which this script reads the results back:

    /entry1/voxelization/cg_grid/voxel_identifier   voxel of each ion, in the POS record order
    /entry1/voxelization/element<k>/{name,weight}   per-voxel element counts
    /entry1/segmentation/ic_opt/cluster_analysis<n-1>/y_pred     GMM phase of each voxel (n comps)
    /entry1/clustering/ic_opt/cluster_analysis<n-1>/dbscan<p>/label   DBSCAN label of each voxel
                                                                      of phase p, in voxel order

CompositionSpace assigns each ion to exactly one voxel (rectangular transfer function:
np.digitize of x, y, z on its own grid); the voxel_identifier array it stores is that
assignment, so each ion gets the phase and the DBSCAN cluster of its voxel.

Output (npz): ion_phase int8 (1 = the GMM phase richest in --element, 0 = another phase,
-1 = ion not ranged, i.e. not counted in any voxel composition), ion_cluster int32
(0 = not in a DBSCAN cluster of the precipitate phase, k >= 1 = cluster k), info (JSON str).
Errors: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time

PROG = "compositionspace_run"

# The defaults of CompositionSpace's own example configuration (tests/experiment_params.yaml
# in its repository): DBSCAN eps 3 nm, min_samples 5; autophase truncation to 2 species.
DEFAULT_EPS_NM = 3.0
DEFAULT_MIN_SAMPLES = 5
DEFAULT_TRUNC_SPECIES = 2


class Failure(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        print(f"{PROG}: error: {message}", file=sys.stderr)
        sys.exit(2)


def parse_args(argv=None):
    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--pos", required=True, help="reconstruction (.pos; .apt also accepted)")
    p.add_argument("--range", required=True, help="ranging definitions (.rrng)")
    p.add_argument("--out", required=True, help="output labels .npz")
    p.add_argument("--voxel-nm", type=float, default=1.5, help="voxel edge length, nm (default 1.5)")
    p.add_argument(
        "--components",
        default="3",
        help="GMM components: an integer, or 'bic' for CompositionSpace's BIC minimum over "
        "1..--max-components (default 3)",
    )
    p.add_argument("--max-components", type=int, default=5, help="upper bound for --components bic (default 5)")
    p.add_argument("--element", default="Li", help="the precipitate phase is the phase richest in it (default Li)")
    p.add_argument("--workdir", default=None, help="keep config, results .nxs and log here (default: a temp dir, removed)")
    p.add_argument("--eps", type=float, default=DEFAULT_EPS_NM, help=f"DBSCAN eps, nm (default {DEFAULT_EPS_NM})")
    p.add_argument("--min-samples", type=int, default=DEFAULT_MIN_SAMPLES, help=f"DBSCAN min_samples (default {DEFAULT_MIN_SAMPLES})")
    p.add_argument("--autophase", action="store_true", help="use CompositionSpace's random-forest feature selection before the GMM")
    p.add_argument("--trunc-species", type=int, default=DEFAULT_TRUNC_SPECIES, help="autophase: composition columns kept (default 2)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for BLAS/OpenMP/joblib (default 1)")
    a = p.parse_args(argv)
    if a.voxel_nm <= 0:
        p.error("--voxel-nm must be > 0")
    if a.components.strip().lower() == "bic":
        a.components = "bic"
        if a.max_components < 1:
            p.error("--max-components must be >= 1")
    else:
        try:
            a.components = int(a.components)
        except ValueError:
            p.error(f"--components must be an integer or 'bic', got {a.components!r}")
        if a.components < 1:
            p.error("--components must be >= 1")
    if a.eps <= 0 or a.min_samples < 1 or a.threads < 1 or a.trunc_species < 1:
        p.error("--eps, --min-samples, --threads and --trunc-species must be positive")
    return a


def limit_threads(n: int):
    # before numpy/scikit-learn are imported: CompositionSpace calls DBSCAN and the random
    # forest with n_jobs=-1, which joblib resolves through LOKY_MAX_CPU_COUNT
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "LOKY_MAX_CPU_COUNT",
                "NUMEXPR_NUM_THREADS", "BLIS_NUM_THREADS"):
        os.environ[var] = str(n)


def n_records(path: str) -> int | None:
    if path.lower().endswith(".pos"):
        size = os.path.getsize(path)
        if size % 16:
            raise Failure(f"{path}: size {size} is not a multiple of 16 bytes (not a POS file)")
        return size // 16
    return None


def run(a) -> dict:
    import h5py
    import numpy as np
    import yaml

    import compositionspace
    from compositionspace.autophase import ProcessAutomatedPhaseAssignment
    from compositionspace.clustering import ProcessClustering
    from compositionspace.io import get_iontypes, get_ranging_info
    from compositionspace.preparation import ProcessPreparation
    from compositionspace.segmentation import ProcessSegmentation
    from compositionspace.utils import get_chemical_element_multiplicities

    t0 = time.perf_counter()
    for path in (a.pos, a.range):
        if not os.path.isfile(path):
            raise Failure(f"no such file: {path}")
    if not a.pos.lower().endswith((".pos", ".apt")):
        raise Failure(f"CompositionSpace reads .pos or .apt reconstructions, not {a.pos}")
    if not a.range.lower().endswith(".rrng"):
        raise Failure(f"CompositionSpace reads .rrng ranging with a .pos/.apt file, not {a.range}")
    pos_path = os.path.abspath(a.pos)
    rng_path = os.path.abspath(a.range)
    n_expected = n_records(pos_path)

    n_max = a.max_components if a.components == "bic" else a.components
    config = {
        "voxelization": {"edge_length": float(a.voxel_nm)},
        "autophase": {
            "use": bool(a.autophase),
            "initial_guess": int(n_max),
            "trunc_species": int(a.trunc_species),
        },
        "segmentation": {"n_max_ic_cluster": int(n_max)},
        "clustering": {"dbscan": {"eps": float(a.eps), "min_samples": int(a.min_samples)}},
    }

    tmp = None
    if a.workdir:
        workdir = os.path.abspath(a.workdir)
        os.makedirs(workdir, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="compositionspace-")
        workdir = tmp.name
    cfg_path = os.path.join(workdir, "compositionspace.yaml")
    res_path = os.path.join(workdir, "CompositionSpace.Results.nxs")
    log_path = os.path.join(workdir, "compositionspace.log")
    with open(cfg_path, "w") as fh:
        yaml.safe_dump(config, fh, sort_keys=False)

    seconds = {}
    try:
        # CompositionSpace prints a lot to stdout: keep it in the work dir. It also runs
        # `git describe` in the cwd for its version field: point git at nothing
        os.environ["GIT_DIR"] = os.path.join(workdir, ".no-git")
        cwd = os.getcwd()
        os.chdir(workdir)
        stage = "voxelization (ProcessPreparation)"
        try:
            with open(log_path, "w") as log, contextlib.redirect_stdout(log):
                t = time.perf_counter()
                prep = ProcessPreparation(cfg_path, res_path, entry_id=1, verbose=False)
                prep.run(recon_file_path=pos_path, range_file_path=rng_path)
                seconds["voxelization"] = time.perf_counter() - t
                if a.autophase:
                    stage = "autophase (ProcessAutomatedPhaseAssignment)"
                    t = time.perf_counter()
                    ProcessAutomatedPhaseAssignment(cfg_path, res_path, entry_id=1, verbose=False).run()
                    seconds["autophase"] = time.perf_counter() - t
                stage = "segmentation (ProcessSegmentation)"
                t = time.perf_counter()
                ProcessSegmentation(cfg_path, res_path, entry_id=1, verbose=False).run()
                seconds["segmentation"] = time.perf_counter() - t
                stage = "clustering (ProcessClustering)"
                t = time.perf_counter()
                ProcessClustering(cfg_path, res_path, entry_id=1, verbose=False).run()
                seconds["clustering"] = time.perf_counter() - t
        except Exception as exc:
            msg = " ".join(str(exc).split()) or type(exc).__name__
            hint = ""
            if stage.startswith("voxelization") and "zero-size array" in msg:
                hint = " (CompositionSpace fails when an RRNG ion type matches no ion)"
            raise Failure(f"CompositionSpace {stage}: {type(exc).__name__}: {msg}{hint}") from exc
        finally:
            os.chdir(cwd)

        t = time.perf_counter()
        with h5py.File(res_path, "r") as h5:
            e = "/entry1"
            grid = f"{e}/voxelization/cg_grid"
            vid = np.asarray(h5[f"{grid}/voxel_identifier"][:], np.int64)
            extent = [int(v) for v in h5[f"{grid}/extent"][:]]
            origin = [float(v) for v in h5[f"{grid}/origin"][:]]
            n_vox = int(np.prod(extent))
            names, weights = [], []
            k = 1
            while f"{e}/voxelization/element{k}" in h5:
                nm = h5[f"{e}/voxelization/element{k}/name"][()]
                names.append(nm.decode() if isinstance(nm, bytes) else str(nm))
                weights.append(np.asarray(h5[f"{e}/voxelization/element{k}/weight"][:], np.float64))
                k += 1
            total = np.asarray(h5[f"{e}/voxelization/weight"][:], np.float64)
            ic = f"{e}/segmentation/ic_opt"
            bic = [float(v) for v in h5[f"{ic}/result/axis_bic"][:]]
            aic = [float(v) for v in h5[f"{ic}/result/axis_aic"][:]]
            n_comp = int(np.argmin(bic)) + 1 if a.components == "bic" else int(a.components)
            y_pred = np.asarray(h5[f"{ic}/cluster_analysis{n_comp - 1}/y_pred"][:], np.int64)
            pca_var = [float(v) for v in h5[f"{e}/segmentation/pca/result/axis_explained_variance"][:]]
            autophase_order = None
            if a.autophase:
                autophase_order = [int(v) for v in h5[f"{e}/autophase/result/axis_feature_identifier"][:]]

            if a.element not in names:
                raise Failure(f"element {a.element!r} is not ranged in {a.range} (elements: {', '.join(names)})")
            if y_pred.shape[0] != n_vox or total.shape[0] != n_vox:
                raise Failure(f"results file: {y_pred.shape[0]} phase labels for {n_vox} voxels")
            if n_expected is not None and vid.shape[0] != n_expected:
                raise Failure(f"results file: {vid.shape[0]} voxel identifiers for {n_expected} POS records")
            if vid.size and (vid.min() < 0 or vid.max() >= n_vox):
                raise Failure("results file: voxel identifier outside the grid")

            W = np.stack(weights, axis=1)  # (n_vox, n_elements) element counts
            phases = []
            for p in range(int(y_pred.max()) + 1):
                m = y_pred == p
                cnt = W[m].sum(axis=0)
                atoms = float(cnt.sum())
                phases.append({
                    "phase": p,
                    "n_voxels": int(m.sum()),
                    "n_empty_voxels": int((m & (total == 0)).sum()),
                    "n_atoms": int(atoms),
                    "at_pct": {nm: (100.0 * float(c) / atoms if atoms else None) for nm, c in zip(names, cnt)},
                })
            with_atoms = [ph for ph in phases if ph["n_atoms"] > 0]
            if not with_atoms:
                raise Failure("no voxel holds a ranged ion")
            prec = max(with_atoms, key=lambda ph: ph["at_pct"][a.element])["phase"]

            # DBSCAN of the precipitate phase: labels follow the voxels of that phase in voxel
            # order (CompositionSpace fits on all_vxl_pos[y_pred == p]); its stored `voxel`
            # index array comes from np.linspace(0, N, num=N), which is off by one for the last
            # grid voxel, so the order is rebuilt here with flatnonzero instead.
            db = f"{e}/clustering/ic_opt/cluster_analysis{n_comp - 1}/dbscan{prec}"
            labels = np.asarray(h5[f"{db}/label"][:], np.int64)
            stored_vox = np.asarray(h5[f"{db}/voxel"][:], np.int64)
        prec_vox = np.flatnonzero(y_pred == prec)
        if labels.shape[0] != prec_vox.shape[0]:
            raise Failure(f"results file: {labels.shape[0]} DBSCAN labels for {prec_vox.shape[0]} voxels of phase {prec}")
        vox_cluster = np.zeros(n_vox, np.int32)
        vox_cluster[prec_vox] = np.where(labels >= 0, labels + 1, 0)

        # ions CompositionSpace counted: ranged with an ion type that names chemical elements
        with open(log_path, "a") as log, contextlib.redirect_stdout(log):  # the readers print
            ityp_info, _, _ = get_ranging_info(rng_path, verbose=False)
            ityp = np.asarray(get_iontypes(pos_path, ityp_info), np.int64)
        counted_types = np.zeros(256, bool)
        for key, (ion_name, ion_id, _) in ityp_info.items():
            if key != "ion0" and get_chemical_element_multiplicities(ion_name):
                counted_types[int(ion_id)] = True
        if ityp.shape[0] != vid.shape[0]:
            raise Failure(f"{ityp.shape[0]} ion types for {vid.shape[0]} voxel identifiers")
        counted = counted_types[ityp]

        ion_phase = np.where(y_pred[vid] == prec, 1, 0).astype(np.int8)
        ion_phase[~counted] = -1
        ion_cluster = np.where(ion_phase == 1, vox_cluster[vid], 0).astype(np.int32)
        seconds["mapping"] = time.perf_counter() - t
        seconds["total"] = time.perf_counter() - t0

        import sklearn
        from importlib.metadata import version as _v

        info = {
            "tool": "compositionspace",
            "version": compositionspace.__version__,
            "versions": {
                "compositionspace": compositionspace.__version__,
                "ifes_apt_tc_data_modeling": _v("ifes_apt_tc_data_modeling"),
                "scikit_learn": sklearn.__version__,
                "numpy": np.__version__,
                "python": sys.version.split()[0],
            },
            "inputs": {"pos": pos_path, "range": rng_path},
            "settings": {
                "voxel_nm": a.voxel_nm,
                "components": n_comp,
                "components_arg": a.components,
                "element": a.element,
                "dbscan_eps_nm": a.eps,
                "dbscan_min_samples": a.min_samples,
                "autophase": a.autophase,
                "trunc_species": a.trunc_species if a.autophase else None,
                "threads": a.threads,
                "config": config,
            },
            "grid": {"origin_nm": origin, "extent": extent, "n_voxels": n_vox,
                     "n_empty_voxels": int((total == 0).sum())},
            "elements": names,
            "pca_cumulative_explained_variance": pca_var,
            "autophase_feature_order": autophase_order,
            "bic": bic,
            "aic": aic,
            "phases": phases,
            "precipitate_phase": prec,
            "n_ions": int(vid.shape[0]),
            "n_ions_unassigned": int((ion_phase == -1).sum()),
            "n_ions_precipitate_phase": int((ion_phase == 1).sum()),
            "n_clusters": int(labels.max() + 1) if labels.size else 0,
            "n_noise_voxels": int((labels < 0).sum()),
            "stored_dbscan_voxel_index_ok": bool(np.array_equal(stored_vox, prec_vox)),
            "seconds": {k: round(v, 3) for k, v in seconds.items()},
            "workdir": workdir if a.workdir else None,
        }
        out = os.path.abspath(a.out)
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
        part = out + ".part"
        with open(part, "wb") as fh:
            np.savez_compressed(fh, ion_phase=ion_phase, ion_cluster=ion_cluster, info=np.array(json.dumps(info)))
        os.replace(part, out)
        return info
    finally:
        if tmp is not None:
            tmp.cleanup()


def main(argv=None) -> int:
    a = parse_args(argv)
    limit_threads(a.threads)
    try:
        import warnings
        warnings.filterwarnings("ignore")
        info = run(a)
    except Failure as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # anything from CompositionSpace or the readers
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{PROG}: error: {type(exc).__name__}: {msg}", file=sys.stderr)
        return 2
    prec = info["phases"][info["precipitate_phase"]]
    print(
        f"{PROG}: {info['n_ions']} ions, {info['settings']['components']} phases on "
        f"{info['settings']['voxel_nm']} nm voxels; precipitate phase {info['precipitate_phase']} "
        f"({info['settings']['element']} {prec['at_pct'][info['settings']['element']]:.1f} at.%), "
        f"{info['n_ions_precipitate_phase']} ions, {info['n_clusters']} DBSCAN clusters; "
        f"{info['seconds']['total']:.1f} s -> {a.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
