"""`apt-cnn train-ions`: the per-ion classifier trained on simulated specimens with per-ion truth.

Each training specimen draws its acquisition and microstructure independently over the ranges of
the accuracy benchmark (training_condition): efficiency 0.3-0.85, sigma_xy 0.15-0.6 nm, sigma_z
0.01-0.065 nm, pole tilt 0-2.5 deg in any azimuth, curved planes, z-scale +-3 %, background 0-2 %,
interface magnification, volume fraction 0-25 % with gaps down to 0.2 nm, radii 0.5-6 nm, matrix
compositions 3-9 at.% Li and 0.5-6.5 at.% Mg, and ordered domains with the matrix's composition.
Seeds start at 8001 (validation 9001), apart from the benchmark's (5001..) and the CNN's
calibration (3001..). Specimens are spread over the MPI ranks; features are cached per specimen
in --work.

Stage 1 is cross-fitted: two networks, each trained on half of the specimens, give every training
ion a stage-1 logit from the network that did not see it, so stage 2 learns from stage-1 outputs
as they look on new data. Stage 2 is one network; its output is Platt-calibrated on the
validation specimens, whose per-ion scores go into the card.
"""
import json
import logging
import time
from pathlib import Path

import numpy as np

from ..config import load_config, merge
from ..contracts.ion_model import write_ion_model
from ..errors import InputError
from ..parallel import is_root, progress
from ..provenance import software_versions
from ..sdm import VoxelGrid
from ..sdm.ion_features import LEVEL_COLUMNS, N_STAGE1, N_STAGE2, levels, partner_types, stage1, stage2_features
from ..sdm.lattice import fit_plane_field
from .calibration import apply_calibration, expected_calibration_error, fit_platt
from .ion_mlp import fit_mlp, logits, raw_probability, stage2_logits

log = logging.getLogger(__name__)
TRAIN_SEED, VALIDATION_SEED = 8001, 9001
FEATURES_VERSION = 1          # bump when sdm/ion_features.py or sdm/lattice.py change what they compute


def training_condition(seed: int, size_nm: float = 18.0) -> dict:
    """Specimen overrides drawn over the benchmark's ranges (see module doc)."""
    r = np.random.default_rng(seed + 12345)
    det = {"efficiency": r.uniform(0.3, 0.85), "sigma_xy_nm": r.uniform(0.15, 0.6),
           "sigma_z_nm": r.uniform(0.01, 0.065),
           "pole_tilt_deg": r.uniform(0, 2.5) if r.random() < 0.75 else 0.0,
           "pole_tilt_azimuth_deg": r.uniform(0, 360),
           "curvature_radius_nm": 0.0 if r.random() < 0.5 else r.uniform(1000, 5000),
           "z_scale": r.uniform(0.97, 1.03) if r.random() < 0.8 else 1.0,
           "background_fraction": r.uniform(0, 0.02),
           "interface_magnification": r.uniform(0.9, 1.1) if r.random() < 0.6 else 1.0}
    vf = 0.0 if r.random() < 0.1 else r.uniform(0.02, 0.25)
    rm = r.uniform(0.8, 3.0)
    prec = {"volume_fraction": vf, "radius_mean_nm": rm, "radius_sd_nm": rm * r.uniform(0.15, 0.45),
            "radius_min_nm": 0.5, "radius_max_nm": max(1.2, min(6.0, rm * 2.2)), "min_gap_nm": r.uniform(0.2, 1.0)}
    li, mg = r.uniform(3.0, 9.0), r.uniform(0.5, 6.5)
    same = bool(r.random() < 0.15)
    if not same:   # the matrix stays non-negative: Al3(Li,Mg) holds ~25 % solute
        li, mg = max(li, vf * 18 + 0.5), max(mg, vf * 5.25 + 0.3)
    return {"size_nm": [size_nm] * 3, "detector": det, "precipitates": prec,
            "overall_composition_at_pct": {"Li": round(li, 2), "Mg": round(mg, 2)}, "same_composition": same}


def specimen_features(seed: int, solutes, work: Path, size_nm: float) -> Path:
    """Simulate one specimen and cache (xyz, truth, oracle, stage-1 features, plane field) as npz."""
    from ..crystal.specimen import make_specimen
    from ..segment.score import oracle_labels
    path = work / f"specimen_{seed}.npz"
    over = training_condition(seed, size_nm)
    key = json.dumps({"condition": over, "solutes": list(solutes), "features": FEATURES_VERSION}, sort_keys=True)
    if (work / f"specimen_{seed}.skipped").exists():
        return path
    if path.exists():
        with np.load(path) as d:
            if "key" in d.files and str(d["key"]) == key:
                return path
        log.info("train-ions: %s was made with other settings or features: remade", path)
    cfg = merge(load_config("specimen"), over)
    cfg["seed"] = seed
    try:
        s = make_specimen(cfg)
    except (ValueError, InputError) as exc:   # a drawn composition no phase split can give
        log.warning("train-ions: specimen %d skipped: %s", seed, exc)
        (work / f"specimen_{seed}.skipped").write_text(str(exc))
        return path
    xyz = s["xyz"].astype(np.float64)
    species = s["ranges"].label(s["mq"])
    types = partner_types(species, [s["ranges"].index(n) for n in solutes])
    field = fit_plane_field(xyz, types >= 0)
    truth = s["precipitate_id"] > 0
    X1 = stage1(xyz, types, field)
    tmp = work / f".specimen_{seed}.tmp.npz"
    np.savez(tmp, key=key, xyz=xyz.astype(np.float32), truth=truth, X1=X1,
             oracle=oracle_labels(xyz, truth, VoxelGrid.covering(xyz, 1.0)),
             field=json.dumps(field.to_dict()), condition=json.dumps(over))
    tmp.replace(path)
    return path


def _on_every_rank(problem: str) -> InputError:
    """An error every rank finds alike: rank 0 says it, no rank aborts the others."""
    exc = InputError(None, problem)
    exc.collective = True
    return exc


def _load(path) -> dict:
    with np.load(path) as d:
        return {k: d[k] for k in d.files}


def _stage2_rows(d, z1, rows):
    """Stage-2 features of the training rows `rows` of a specimen from every ion's stage-1 logit."""
    L = d["X1"][:, LEVEL_COLUMNS]
    return stage2_features(d["xyz"], z1, L[rows], levels(L, z1), rows)


def _pooled_scores(items) -> dict:
    """Per-ion precision, recall, F1 (and the oracle's), volume bias and ECE pooled over specimens."""
    from ..segment.score import prf
    p = np.concatenate([i["p"] for i in items])
    t = np.concatenate([i["truth"] for i in items])
    o = np.concatenate([i["oracle"] for i in items])
    m = prf(p > 0.5, t)
    m["oracle_f1"] = prf(o, t)["f1"]
    m["f1_over_oracle"] = m["f1"] / m["oracle_f1"] if m["oracle_f1"] else None
    m["volume_bias"] = float((p > 0.5).sum() / max(t.sum(), 1) - 1)
    m["fp_fraction"] = float(np.mean(p[~t] > 0.5))
    m["ece"] = expected_calibration_error(p, t)[0]
    return m


def train_ions(args, comm):
    """The `train-ions` stage; returns the model directory."""
    rank, size = comm.Get_rank(), comm.Get_size()
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    train_seeds = list(range(TRAIN_SEED, TRAIN_SEED + args.specimens))
    val_seeds = list(range(VALIDATION_SEED, VALIDATION_SEED + args.validation))
    mine = (train_seeds + val_seeds)[rank::size]
    with progress(len(mine), "specimens", comm) as bar:
        for seed in mine:
            specimen_features(seed, args.solutes, work, args.size_nm)
            bar.update(1)
    comm.Barrier()
    t_features = time.time() - t0
    rng = np.random.default_rng(args.seed)
    # --work must be one directory every rank sees (ranks read specimens made by others)
    made = comm.bcast({s for s in train_seeds + val_seeds if (work / f"specimen_{s}.npz").exists()}
                      if rank == 0 else None)
    train_seeds, val_seeds = [s for s in train_seeds if s in made], [s for s in val_seeds if s in made]
    if len(train_seeds) < 2 * size:
        raise _on_every_rank(f"{len(train_seeds)} training specimens cannot feed two folds on {size} ranks")
    own_train = train_seeds[rank::size]
    folds = {s: (k // size) % 2 for k, s in enumerate(train_seeds)}   # every rank holds both folds
    # only the drawn rows stay in memory; a specimen's full features are read when needed
    rows = {}
    for s in own_train:
        with np.load(work / f"specimen_{s}.npz") as d:
            n = len(d["truth"])
            sub = np.sort(rng.choice(n, min(args.rows, n), replace=False))
            rows[s] = (sub, d["X1"][sub], d["truth"][sub])
    stage1_models = []
    with progress(3 * args.epochs, "epochs", comm) as bar:
        for f in (0, 1):    # network f learns from the specimens of the other fold
            seeds = [s for s in own_train if folds[s] != f]
            X = np.concatenate([rows[s][1] for s in seeds])
            y = np.concatenate([rows[s][2] for s in seeds])
            stage1_models.append(fit_mlp(comm, X, y, args.seed + f, args.epochs, progress=bar))
            del X
        X2 = []
        for s in own_train:   # stage-1 logits from the network that did not see the specimen
            d = _load(work / f"specimen_{s}.npz")
            X2.append(_stage2_rows(d, logits([stage1_models[folds[s]]], d["X1"]), rows[s][0]))
        y2 = np.concatenate([rows[s][2] for s in own_train])
        stage2_model = fit_mlp(comm, np.concatenate(X2), y2, args.seed + 7, args.epochs, progress=bar)
    t_fit = time.time() - t0 - t_features
    # validation specimens: calibration of stage 2 and the card's scores (each rank its share)
    items = []
    for s in val_seeds[rank::size]:
        d = _load(work / f"specimen_{s}.npz")
        z2 = stage2_logits(stage1_models, stage2_model, d["xyz"], d["X1"])
        items.append({"z": z2, "truth": d["truth"], "oracle": d["oracle"], "seed": s,
                      "condition": json.loads(str(d["condition"]))})
    items = [i for part in comm.allgather(items) for i in part]
    if not items:
        raise _on_every_rank("no validation specimen could be made (the calibration is fitted on them)")
    raw = raw_probability(np.concatenate([i["z"] for i in items]))
    truth = np.concatenate([i["truth"] for i in items])
    cal = fit_platt(raw, truth)
    for i in items:
        i["p"] = apply_calibration(raw_probability(i["z"]), cal)
    metrics = {"validation": _pooled_scores(items),
               "validation_ece_before_calibration": expected_calibration_error(raw, truth)[0],
               "validation_per_specimen": [{"seed": i["seed"], **{k: v for k, v in _pooled_scores([i]).items()
                                                                   if k in ("f1_over_oracle", "volume_bias", "ece")}}
                                           for i in items]}
    if is_root(comm):
        card = {"solutes": list(args.solutes), "features": {"stage1": N_STAGE1, "stage2": N_STAGE2},
                "calibration": {**cal, "fitted_on": {"seeds": val_seeds}}, "decision_threshold": 0.5,
                "training": {"specimens": train_seeds, "rows_per_specimen": args.rows, "epochs": args.epochs,
                             "size_nm": args.size_nm, "ranks": size, "seed": args.seed,
                             "conditions": "apt_cnn_hpc.model.ion_train.training_condition",
                             "features_s": t_features, "fit_s": t_fit},
                "metrics": metrics, "software": software_versions()}
        write_ion_model(out, stage1_models, stage2_model, card)
    comm.Barrier()
    log.info("train-ions: %s (validation F1/oracle %.3f, volume bias %+.3f, ECE %.3f)", out,
             metrics["validation"]["f1_over_oracle"] or 0, metrics["validation"]["volume_bias"],
             metrics["validation"]["ece"])
    return out
