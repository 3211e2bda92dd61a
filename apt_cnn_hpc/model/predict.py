"""Batched CNN inference. A plain TensorFlow graph runs the convolutions through oneDNN, about
twice as fast on CPUs as the XLA-compiled function (bench/scan.py measures both); `bfloat16`
runs them in bfloat16 (AMX / AVX512-BF16 where the CPU has them) with the output layer in float32.
"""
import numpy as np

from .calibration import apply_calibration
from .cnn import prepare

PRECISIONS = ("float32", "bfloat16")


def _bfloat16_copy(model):
    """The same network with bfloat16 compute (float32 weights and output layer)."""
    from .cnn import build_model
    copy = build_model(model.input_shape[1], compute="mixed_bfloat16")
    copy.set_weights(model.get_weights())
    return copy


class Predictor:
    """Batched L1_2 probabilities of maps; with a model card's `calibration`, calibrated ones."""

    def __init__(self, model, batch: int = 256, precision: str = "float32", calibration: dict | None = None):
        import tensorflow as tf
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.model = model if precision == "float32" else _bfloat16_copy(model)
        self.batch = batch
        self.calibration = calibration
        self._fn = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)

    def __call__(self, maps_uint8) -> np.ndarray:
        """L1_2 probability per map (float32 [n])."""
        n = len(maps_uint8)
        out = np.empty(n, np.float32)
        for i in range(0, n, self.batch):
            chunk = maps_uint8[i:i + self.batch]
            x = prepare(chunk)
            if len(x) < self.batch:  # one shape -> one graph, and results independent of n
                x = np.concatenate([x, np.zeros((self.batch - len(x),) + x.shape[1:], x.dtype)])
            out[i:i + len(chunk)] = np.asarray(self._fn(x), np.float32)[: len(chunk), 0]
        return apply_calibration(out, self.calibration).astype(np.float32)
