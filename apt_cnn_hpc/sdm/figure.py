"""The zx-SDM and z-SDM of a region as one PNG (the paper's Figure 1e/f)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_sdm(path, zx, dz_edges, dx_edges, z, z_edges, title: str):
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.4))
    a.imshow(zx, origin="lower", cmap="gray", aspect="equal",
             extent=(dx_edges[0], dx_edges[-1], dz_edges[0], dz_edges[-1]))
    a.set_xlabel("dx (nm)")
    a.set_ylabel("dz (nm)")
    a.set_title("zx-SDM")
    c = 0.5 * (z_edges[1:] + z_edges[:-1])
    b.plot(c, z, lw=0.8)
    b.set_xlabel("dz (nm)")
    b.set_ylabel("pair count")
    b.set_title("z-SDM")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)
    return np.asarray(zx).shape
