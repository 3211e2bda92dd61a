"""The paper's CNN (Li et al. 2021, Figure 3b) and the one input normalisation.

150x150x1 -> [Conv2D(n, 3x3, relu, valid) -> MaxPool2] x 4 with n = 16, 32, 64, 64 -> Flatten ->
Dense(512, relu) -> Dense(1, sigmoid): 1,666,881 parameters for 150 x 150 maps.
"""
import numpy as np

FILTERS = (16, 32, 64, 64)


def prepare(maps_uint8) -> np.ndarray:
    """uint8 maps [n, b, b] -> float32 [n, b, b, 1] in 0..1: used by training, evaluation and scan."""
    x = np.asarray(maps_uint8, dtype=np.float32) * (1.0 / 255.0)
    return x[..., None]


def logit(p) -> np.ndarray:
    """Log-odds of output probabilities, clipped so that float32 outputs of exactly 0 or 1 stay
    finite: thresholds and response curves of the sigmoid output are compared in this space."""
    p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


def build_model(bins: int = 150, compute: str = "float32"):
    """`compute`: a Keras dtype policy for every layer but the output (always float32)."""
    import keras
    from keras import layers
    inp = keras.Input((bins, bins, 1), name="zx_sdm")
    x = inp
    for n in FILTERS:
        x = layers.Conv2D(n, 3, activation="relu", padding="valid", dtype=compute)(x)
        x = layers.MaxPooling2D(2, dtype=compute)(x)
    x = layers.Flatten(dtype=compute)(x)
    x = layers.Dense(512, activation="relu", dtype=compute)(x)
    out = layers.Dense(1, activation="sigmoid", name="p_l12", dtype="float32")(x)
    return keras.Model(inp, out, name="li2021_cnn")
