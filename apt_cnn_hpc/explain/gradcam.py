"""Feature maps of every convolution layer and Grad-CAM heat maps per convolution layer.

Grad-CAM (Selvaraju et al. 2017): channel weights = spatial mean of d(score)/d(activation);
heat map = ReLU(sum_k w_k A_k), upsampled to the map. The score is p(L1_2) for maps the CNN calls
L1_2 and 1 - p for maps it calls FCC, so each heat map shows the evidence for the decision.
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..model.cnn import prepare  # noqa: E402


def _conv_layers(model):
    return [l for l in model.layers if l.__class__.__name__ == "Conv2D"]


def explain_maps(model, maps_uint8, labels, out_dir, tag: str = "map"):
    """Write features_<tag><i>_conv<k>.png and gradcam_<tag><i>.png; returns the file names."""
    import keras
    import tensorflow as tf
    convs = _conv_layers(model)
    probe = keras.Model(model.inputs, [c.output for c in convs] + [model.output])
    written = []
    for i, (m, lab) in enumerate(zip(maps_uint8, labels)):
        x = tf.constant(prepare(m[None]))
        with tf.GradientTape() as tape:
            *acts, p = probe(x, training=False)
            p = p[0, 0]
            score = p if float(p) >= 0.5 else 1.0 - p
        grads = tape.gradient(score, acts)
        name = f"{tag}{i}"
        for k, a in enumerate(acts):
            a = np.asarray(a[0])
            n = min(16, a.shape[-1])
            fig, axes = plt.subplots(2, n // 2, figsize=(n * 0.9, 2.2))
            for c, ax in enumerate(axes.flat):
                ax.imshow(a[:, :, c], cmap="viridis")
                ax.axis("off")
            fig.suptitle(f"{name} (label {'L1_2' if lab else 'FCC'}), conv{k + 1}: first {n} feature maps")
            fn = f"features_{name}_conv{k + 1}.png"
            fig.savefig(f"{out_dir}/{fn}", dpi=90)
            plt.close(fig)
            written.append(fn)
        fig, axes = plt.subplots(1, len(acts) + 1, figsize=(3 * (len(acts) + 1), 3.2))
        axes[0].imshow(m, cmap="gray", origin="lower")
        axes[0].set_title(f"zx-SDM, p(L1_2) = {float(p):.3f}")
        for k, (a, g) in enumerate(zip(acts, grads)):
            a, g = np.asarray(a[0]), np.asarray(g[0])
            cam = np.maximum((a * g.mean(axis=(0, 1))).sum(axis=-1), 0)
            cam = np.asarray(tf.image.resize(cam[..., None], m.shape, method="bilinear"))[..., 0]
            axes[k + 1].imshow(m, cmap="gray", origin="lower")
            axes[k + 1].imshow(cam / (cam.max() or 1), cmap="jet", alpha=0.45, origin="lower")
            axes[k + 1].set_title(f"Grad-CAM conv{k + 1}")
        for ax in axes:
            ax.axis("off")
        fn = f"gradcam_{name}.png"
        fig.tight_layout()
        fig.savefig(f"{out_dir}/{fn}", dpi=90)
        plt.close(fig)
        written.append(fn)
    return written
