"""The per-ion classifier's network: a small MLP (GELU, 64-64-32) that outputs a logit, with the
feature standardisation (mean, sd of the training rows, clipped to +-8 sd) inside the model, so a
saved model needs nothing else. Trained data-parallel with Horovod like the CNN (model/train.py):
each rank keeps its own rows, gradients are averaged with grouped_allreduce, the initial weights
are rank 0's, every rank takes the same number of steps, and the learning rate scales with the
number of ranks."""
import numpy as np

from .steps import data_parallel_step


def build_mlp(mean, sd, hidden=(64, 64, 32)):
    import keras
    inp = keras.Input((len(mean),))
    x = keras.layers.Normalization(mean=np.asarray(mean), variance=np.asarray(sd) ** 2)(inp)
    x = keras.ops.clip(x, -8.0, 8.0)
    for h in hidden:
        x = keras.layers.Dense(h, activation="gelu")(x)
    return keras.Model(inp, keras.layers.Dense(1)(x))


def global_moments(comm, X) -> tuple:
    """Mean and sd of the rows of every rank."""
    n = comm.allreduce(float(len(X)))
    s = comm.allreduce(X.sum(0, dtype=np.float64))
    s2 = comm.allreduce(np.square(X, dtype=np.float64).sum(0))
    mean = s / n
    return mean, np.sqrt(np.maximum(s2 / n - mean ** 2, 0)) + 1e-6


def fit_mlp(comm, X, y, seed: int, epochs: int = 6, batch: int = 1024, lr: float = 2e-3, hidden=(64, 64, 32),
            progress=None):
    """Train on this rank's rows (X float32 [n, f], y 0/1); returns the Keras model (same on all ranks)."""
    import keras
    import tensorflow as tf
    size = comm.Get_size()
    keras.utils.set_random_seed(seed)
    model = build_mlp(*global_moments(comm, X), hidden)
    steps_epoch = comm.allreduce(len(X) // batch, op=_min()) or 1
    schedule = keras.optimizers.schedules.CosineDecay(lr * size, epochs * steps_epoch)
    opt = keras.optimizers.Adam(schedule)
    loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
    opt.build(model.trainable_variables)
    if size > 1:
        import horovod.tensorflow as hvd
        hvd.broadcast_variables([v.value for v in model.variables], root_rank=0)

    step = data_parallel_step(model, opt, loss_fn, size)

    rng = np.random.default_rng(seed + 1000 * comm.Get_rank())
    y = np.asarray(y, np.float32)[:, None]
    for _ in range(epochs):
        order = rng.permutation(len(X))
        for s in range(steps_epoch):
            idx = np.sort(order[s * batch:(s + 1) * batch]) if len(X) >= batch else rng.integers(0, len(X), batch)
            step(tf.constant(X[idx]), tf.constant(y[idx]))
        if progress is not None:
            progress.update(1)
    return model


def _min():
    from mpi4py import MPI
    return MPI.MIN


def logits(models, X, batch=65536) -> np.ndarray:
    """Mean logit of `models` (a list) over the rows of X, float64. A row's logit does not depend
    on the other rows of its batch (TensorFlow's kernels are row-independent except for a batch of
    one row, which is padded), so a distributed scan gives every rank count the same labels."""
    X = np.asarray(X, np.float32)
    out = np.zeros(len(X))
    for m in models:
        for i in range(0, len(X), batch):
            rows = X[i:i + batch]
            padded = np.concatenate([rows, np.zeros((8, X.shape[1]), np.float32)]) if len(rows) < 8 else rows
            out[i:i + len(rows)] += np.asarray(m(padded, training=False))[:len(rows), 0]
    return out / max(len(models), 1)


def stage2_logits(stage1_models, stage2_model, xyz, X1) -> np.ndarray:
    """The stage-2 logit of every ion from its stage-1 features (stage 1: mean of its networks)."""
    from ..sdm.ion_features import LEVEL_COLUMNS, levels, stage2_features
    z1 = logits(stage1_models, X1)
    L = X1[:, LEVEL_COLUMNS]
    return logits([stage2_model], stage2_features(xyz, z1, L, levels(L, z1)))


def raw_probability(z) -> np.ndarray:
    """The network's probability of a logit, kept off 0 and 1 for the calibration's logit."""
    return np.clip(1 / (1 + np.exp(-np.asarray(z, np.float64))), 1e-7, 1 - 1e-7)
