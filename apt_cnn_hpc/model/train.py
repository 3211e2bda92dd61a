"""Horovod data-parallel training of the paper's CNN on the synthetic dictionary.

Every rank reads only its shard of the training rows. A custom step computes gradients (XLA),
averages them over ranks with hvd.grouped_allreduce and applies them with RMSprop; the initial
variables are broadcast from rank 0, so the weights stay identical on every rank. The learning
rate is scaled linearly with the number of ranks (global batch = batch x ranks; Goyal et al.
2017), so N ranks take the same number of samples per unit learning rate as one.

--positive-weight W weights the loss of L1_2 maps W times that of FCC maps: at the optimum the
output becomes W q / (W q + 1 - q) for a true posterior q, so cubes that are probably L1_2 are
pushed towards 1. The paper's voxel rule (sum of 64 cube probabilities above 62) needs nearly all
covering cubes at p > 0.97; W = 0.97 / 0.03 = 32 lets a cube with posterior 0.5 count.

With --folds K > 1 the training rows are cut into K parts and K models are trained, each
validated on the part it did not see (the paper's 5-fold cross-validation); the model with the
lowest validation loss is kept. The 10 % test rows are never trained on.
"""
import hashlib
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..fileutil import sha256_file
from ..parallel import is_root, progress
from ..parallel.mpi import collective
from ..provenance import software_versions
from ..contracts.model_dir import write_model
from .cnn import build_model, prepare
from .steps import data_parallel_step
from ..contracts.dictionary import open_maps, read_rows
from .dataset import split

log = logging.getLogger(__name__)


class Trainer:
    def __init__(self, comm, hvd, bins: int, lr: float, seed: int, positive_weight: float = 1.0):
        import keras
        import tensorflow as tf
        self.comm, self.hvd, self.tf, self.keras = comm, hvd, tf, keras
        keras.utils.set_random_seed(seed)
        self.model = build_model(bins)
        self.opt = keras.optimizers.RMSprop(learning_rate=lr)
        self.model.compile(optimizer=self.opt, loss="binary_crossentropy")  # saved with checkpoints
        self.loss_fn = keras.losses.BinaryCrossentropy()
        self.positive_weight = float(positive_weight)
        self._build_steps()

    def _build_steps(self):
        tf, model, w_pos = self.tf, self.model, self.positive_weight
        self.step = data_parallel_step(
            model, self.opt, lambda y, p: self.loss_fn(y, p, sample_weight=1.0 + (w_pos - 1.0) * y),
            self.comm.Get_size())
        self.predict = tf.function(lambda x: model(x, training=False), jit_compile=True)

    def broadcast(self):
        """Make rank 0's variables everyone's (Keras 3 variables wrap tf.Variables: pass .value)."""
        if self.comm.Get_size() > 1:
            self.hvd.broadcast_variables([v.value for v in self.model.variables], root_rank=0)
            if self.opt.variables:
                self.hvd.broadcast_variables([v.value for v in self.opt.variables], root_rank=0)

    def restore(self, path):
        loaded = self.keras.models.load_model(path)
        self.model.set_weights(loaded.get_weights())
        if loaded.optimizer is not None and loaded.optimizer.variables:
            self.opt.build(self.model.trainable_variables)
            for dst, src in zip(self.opt.variables, loaded.optimizer.variables):
                dst.assign(src)

    def evaluate(self, maps, labels, batch=256):
        """(summed loss, correct, count) over local rows; callers reduce over ranks."""
        loss = correct = 0.0
        for i in range(0, len(maps), batch):
            x = prepare(maps[i:i + batch])
            y = labels[i:i + batch].astype(np.float32)
            p = np.asarray(self.predict(x))[:, 0]
            pc = np.clip(p, 1e-7, 1 - 1e-7)
            loss += float(-np.sum(y * np.log(pc) + (1 - y) * np.log(1 - pc)))
            correct += float(np.sum((p >= 0.5) == (y >= 0.5)))
        return loss, correct, float(len(maps))


def _allsum(comm, values):
    return [float(v) for v in comm.allreduce(np.asarray(values, float))]


def train(args, comm):
    """The `train` stage. Returns the model directory."""
    from ..parallel.mpi import configure_tensorflow
    configure_tensorflow(comm)
    import horovod.tensorflow as hvd
    hvd.init(comm=comm)
    rank, size = comm.Get_rank(), comm.Get_size()
    out = Path(args.out)
    ckpt_dir = out / "checkpoints"
    f, settings, n = collective(comm, open_maps, args.dictionary)
    extras = [collective(comm, open_maps, x) for x in (args.extra or [])]
    for (ef, es, _), path in zip(extras, args.extra or []):
        if es != settings:
            raise InputError(path, "extra maps were made with other SDM settings than the dictionary")
    test_idx, parts = split(n, args.split_seed, args.test_fraction, args.folds)
    if args.kinds:  # train and test on some kinds of dictionary rows only
        from .evaluate import kinds_of_rows
        keep = np.isin(kinds_of_rows(f), args.kinds)
        test_idx, parts = test_idx[keep[test_idx]], [p[keep[p]] for p in parts]
    lr = args.lr * size
    state = {"fold": 0, "epoch": 0, "history": [], "fold_results": []}
    if args.resume and (ckpt_dir / "state.json").is_file():
        state = json.loads((ckpt_dir / "state.json").read_text())
        log.info("resuming at fold %d, epoch %d", state["fold"], state["epoch"])
    elif rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        if ckpt_dir.exists():
            shutil.rmtree(ckpt_dir)
        ckpt_dir.mkdir()
    comm.Barrier()
    folds = max(args.folds, 1)
    t_start = time.time()
    for fold in range(state["fold"], folds):
        val_idx = parts[fold] if folds > 1 else np.zeros(0, np.int64)
        train_idx = np.concatenate([p for k, p in enumerate(parts) if k != fold or folds == 1])
        mine = np.sort(train_idx[rank::size])
        x_loc, y_loc = read_rows(f, mine, targets=True)
        for ef, _, en in extras:  # case 2: extra (e.g. experimental) maps, all for training
            ex, ey = read_rows(ef, np.arange(rank, en, size), targets=True)
            x_loc, y_loc = np.concatenate([x_loc, ex]), np.concatenate([y_loc, ey])
        xv, yv = read_rows(f, np.sort(val_idx[rank::size]), targets=True)
        n_global = comm.allreduce(len(x_loc))
        steps = n_global // (args.batch * size)
        if steps == 0:
            raise InputError(args.dictionary, f"{n_global} training maps are fewer than one global batch")
        trainer = Trainer(comm, hvd, settings.map_bins, lr, args.seed + fold, args.positive_weight)
        start_epoch = 0
        if state["fold"] == fold and state["epoch"] > 0:
            trainer.restore(ckpt_dir / f"fold{fold}_epoch{state['epoch']}.keras")
            start_epoch = state["epoch"]
        trainer.broadcast()
        history = state["history"] if state["fold"] == fold else []
        bar = progress(steps * (args.epochs - start_epoch), f"train fold {fold + 1}/{folds}", comm, "batch")
        for epoch in range(start_epoch, args.epochs):
            t0 = time.time()
            order = np.random.default_rng([args.seed, fold, epoch, rank]).permutation(len(x_loc))
            losses = []
            for s in range(steps):
                b = order[(s * args.batch) % len(order):][: args.batch]
                if len(b) < args.batch:
                    b = order[: args.batch]
                losses.append(float(trainer.step(prepare(x_loc[b]), y_loc[b].astype(np.float32)[:, None])))
                bar.update(1)
            train_loss = _allsum(comm, [np.mean(losses)])[0] / size
            rec = {"fold": fold, "epoch": epoch + 1, "train_loss": train_loss,
                   "seconds": round(time.time() - t0, 1), "maps_per_s": round(steps * args.batch * size / (time.time() - t0), 1)}
            if len(val_idx):
                vl, vc, vn = _allsum(comm, trainer.evaluate(xv, yv))
                rec.update(val_loss=vl / vn, val_accuracy=vc / vn)
            history.append(rec)
            log.info("fold %d epoch %d: %s", fold + 1, epoch + 1, rec)
            if rank == 0:
                trainer.model.save(ckpt_dir / f"fold{fold}_epoch{epoch + 1}.keras")
                (ckpt_dir / "state.json").write_text(json.dumps(
                    {**state, "fold": fold, "epoch": epoch + 1, "history": history}))
                old = ckpt_dir / f"fold{fold}_epoch{epoch}.keras"
                if old.exists():
                    old.unlink()
            state = {**state, "fold": fold, "epoch": epoch + 1, "history": history}
            comm.Barrier()
        bar.close()
        digest = hashlib.sha256(b"".join(np.asarray(w).tobytes() for w in trainer.model.get_weights()))
        log.info("rank %d fold %d weights sha256 %s", rank, fold, digest.hexdigest())
        result = {"fold": fold, "history": history, "final_val_loss": history[-1].get("val_loss"),
                  "final_val_accuracy": history[-1].get("val_accuracy"),
                  "checkpoint": f"fold{fold}_epoch{args.epochs}.keras"}
        state = {"fold": fold + 1, "epoch": 0, "history": [],
                 "fold_results": state["fold_results"] + [result]}
        if rank == 0:
            (ckpt_dir / "state.json").write_text(json.dumps(state))
    comm.Barrier()
    results = state["fold_results"]
    best = min(results, key=lambda r: r["final_val_loss"] if r["final_val_loss"] is not None else 0)
    if is_root(comm):
        _finish(args, f, settings, test_idx, results, best, lr, size, time.time() - t_start, ckpt_dir)
    comm.Barrier()
    for handle in [f] + [ef for ef, _, _ in extras]:
        handle.close()
    return out


def _finish(args, f, settings, test_idx, results, best, lr, size, seconds, ckpt_dir):
    """Rank 0: test accuracy, held-out specimens, model card, final model (atomically)."""
    import json as _json

    import keras

    from .evaluate import model_metrics
    out = Path(args.out)
    model = keras.models.load_model(ckpt_dir / best["checkpoint"], compile=False)
    metrics, calibration = model_metrics(model, f, test_idx, settings, args.validation, args.positive_weight,
                                         args.calibrate, out, heldout=not args.skip_heldout)
    if len(results) > 1:
        metrics["cv_val_accuracy"] = [r["final_val_accuracy"] for r in results]
        metrics["cv_val_accuracy_mean"] = float(np.mean(metrics["cv_val_accuracy"]))
    card = {
        "model": "li2021_cnn (Li et al., npj Comput. Mater. 2021, Fig. 3b)",
        "parameters": int(model.count_params()),
        "input": {"normalisation": "uint8 map / 255 (apt_cnn_hpc.model.cnn.prepare)",
                  "map": "zx-SDM [dz, dx] min-max scaled to uint8 (apt_cnn_hpc.sdm.normalise)"},
        "sdm": settings.to_dict(),
        "library_config": _json.loads(f.attrs.get("library_config", "{}")),
        "dictionary": {"path": str(args.dictionary), "sha256": sha256_file(args.dictionary),
                       "maps": int(f["maps"].shape[0])},
        "extra": [{"path": str(p), "sha256": sha256_file(p)} for p in (args.extra or [])],
        "training": {"seed": args.seed, "split_seed": args.split_seed,
                     "epochs": args.epochs, "batch_per_rank": args.batch,
                     "ranks": size, "learning_rate_base": args.lr, "learning_rate": lr,
                     "lr_scaling": "linear in ranks", "optimizer": "RMSprop",
                     "loss": "binary cross-entropy", "folds": max(args.folds, 1),
                     "test_fraction": args.test_fraction, "kept_fold": best["fold"],
                     "kinds": args.kinds or "all", "positive_weight": args.positive_weight,
                     "target": "training targets (/targets: L1_2 share of mixed maps, else the label)",
                     "calibrate": bool(args.calibrate),
                     "seconds": round(seconds, 1)},
        "history": [h for r in results for h in r["history"]],
        "metrics": metrics,
        "software": software_versions(),
    }
    if calibration:
        card["calibration"] = calibration
    write_model(out, model, card)
    log.info("model -> %s; metrics %s", out, {k: v for k, v in metrics.items() if k != "response"})
