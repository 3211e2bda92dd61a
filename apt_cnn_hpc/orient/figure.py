"""What `orient` saw, as one PNG: the direction-search score map (so a user can tell a clear pole
from a marginal one) and the z-SDM of a central box before and after the transform (the planes
should appear, or sharpen, after it). The z-SDMs are the project's own (sdm/maps.region_sdm)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..sdm.maps import region_sdm  # noqa: E402
from ..sdm.settings import SDMSettings  # noqa: E402

BOX_NM = 5.0                       # side of the central box whose ions are the z-SDM's references


def central_z_sdm(pos, labels, names, centre, species: str):
    """(z-SDM counts, dz edges) of `species`-`species` pairs, references in a BOX_NM cube at `centre`."""
    settings = SDMSettings(pair=(species, species))
    c = np.asarray(centre, float)
    _, z, _ = region_sdm(pos, labels, names, settings, c - BOX_NM / 2, c + BOX_NM / 2)
    return z, settings.z_edges()


def plot_orient(path, orientation, before, after, title: str):
    """before / after: (counts, edges) of the z-SDM in the input and the output frame."""
    s = orientation.search
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.6))
    kz = 2 * np.pi / s.spacing_nm * s.pole[2]
    ext = np.degrees(np.arctan(np.array([s.kx[0], s.kx[-1], s.ky[0], s.ky[-1]]) / kz))
    im = a.imshow(s.score_map.T, origin="lower", extent=ext, cmap="viridis", aspect="equal")
    fig.colorbar(im, ax=a, label="excess power (plane contrast$^2$)")
    p = orientation.pole_in_input
    a.plot(np.degrees(np.arctan(p[0] / p[2])), np.degrees(np.arctan(p[1] / p[2])), "r+", ms=14, mew=1.5)
    a.set_xlabel("pole tilt towards x (deg)")
    a.set_ylabel("pole tilt towards y (deg)")
    a.set_title(f"direction search (peak {s.zscore:.0f} sd over the cap)")
    d = orientation.spacing_expected_nm
    lims = (np.inf, -np.inf)
    for (z, edges), label, offset in ((before, "input", 0.0), (after, "output (+0.2)", 0.2)):
        c = 0.5 * (edges[1:] + edges[:-1])
        w = max(1, int(round(0.01 / (edges[1] - edges[0]))))     # 0.01 nm bins for the plot
        n = len(z) // w * w
        zz = np.asarray(z[:n], float).reshape(-1, w).sum(1)
        cc = c[:n].reshape(-1, w).mean(1)
        # divided by its running mean over one spacing: the ball's envelope goes, the planes stay
        win = max(1, int(round(d / (cc[1] - cc[0]))))
        trend = np.convolve(zz, np.ones(win) / win, mode="same")
        y = zz / np.maximum(trend, 1e-12) + offset
        b.plot(cc, y, lw=0.8, label=label)
        seen = y[np.abs(cc) <= 1.0]
        lims = (min(lims[0], seen.min()), max(lims[1], seen.max()))
    for m in range(-6, 7):
        b.axvline(m * d, color="0.8", lw=0.5, zorder=0)
    b.set_xlim(-1.0, 1.0)
    if np.all(np.isfinite(lims)):
        b.set_ylim(lims[0] - 0.05, lims[1] + 0.05)
    b.set_xlabel("dz (nm)")
    b.set_ylabel("pair count / running mean")
    b.set_title(f"z-SDM of a central {BOX_NM:g} nm box (grey: expected planes)")
    b.legend(frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)
