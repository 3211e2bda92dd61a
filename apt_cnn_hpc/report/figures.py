"""The report's figures (PNG), each a function of arrays already in the scan file."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402



def colour(name: str) -> str:
    """A method's colour (its class says it), black for the truth."""
    from ..segment.methods import REGISTRY
    return REGISTRY[name].colour if name in REGISTRY else "black"


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


def plot_comparison(path, tables: dict, summary: dict):
    """Size distributions and counts of every method side by side."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    rmax = max([float(t["radius_nm"].max()) for t in tables.values() if len(t["radius_nm"])] + [1.0])
    bins = np.arange(0, rmax + 0.5, 0.5)
    for name, t in tables.items():
        s = summary[name]
        lab = f"{name}: {s['count']}" + (f", r = {s['mean_radius_nm']:.2f} +- {s['sd_radius_nm'] or 0:.2f} nm"
                                        if s["count"] else "")
        a.hist(t["radius_nm"], bins=bins, histtype="step", lw=1.6, color=colour(name), label=lab)
    a.set_xlabel("equivalent radius (nm)")
    a.set_ylabel("precipitates")
    a.legend(fontsize=8)
    names = list(tables)
    a.set_title("size distribution")
    b.bar(names, [summary[n]["count"] for n in names], color=[colour(n) for n in names])
    for i, n in enumerate(names):
        iou = summary[n]["ion_overlap_with_default_iou"]
        b.text(i, summary[n]["count"], f"IoU {iou:.2f}" if iou is not None else "", ha="center", va="bottom")
    b.tick_params(axis="x", labelrotation=20)
    b.set_ylabel("precipitates")
    b.set_title("count (ion IoU with the default method)")
    _save(fig, path)


def plot_probability_histograms(path, cube_prob, scaled_sum, threshold: float, full_window: int):
    """Supplementary Figure 3 (cube probabilities) and Figure 5a (voxel sums)."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.hist(cube_prob, bins=50, range=(0, 1), color="grey")
    a.set_yscale("log")
    a.set_xlabel("cube L1_2 probability")
    a.set_ylabel("cubes")
    a.set_title(f"{len(cube_prob)} evaluated cubes")
    s = scaled_sum[np.isfinite(scaled_sum)]
    b.hist(s, bins=64, range=(0, full_window), color="grey")
    b.axvline(threshold, color="tab:red", label=f"threshold {threshold:g}")
    b.set_yscale("log")
    b.set_xlabel(f"voxel sum of probabilities (scaled to {full_window} windows)")
    b.set_ylabel("voxels")
    b.legend()
    _save(fig, path)


def plot_slices(path, scaled_sum, labels: dict, origin, voxel_nm: float, full_window: int, n: int = 3):
    """z-slices through the voxel map with each method's L1_2 voxels (`labels`: method -> voxel
    share of its L1_2 ions) outlined at one half."""
    nz = scaled_sum.shape[2]
    ks = np.linspace(0, nz - 1, n + 2)[1:-1].astype(int)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4))
    lo = float(np.nanpercentile(scaled_sum, 1)) if np.isfinite(scaled_sum).any() else 0.0
    for ax, k in zip(np.atleast_1d(axes), ks):
        ext = (origin[1], origin[1] + scaled_sum.shape[1] * voxel_nm,
               origin[0], origin[0] + scaled_sum.shape[0] * voxel_nm)
        ax.imshow(scaled_sum[:, :, k], origin="lower", extent=ext, vmin=lo, vmax=full_window, cmap="viridis")
        for name, lab in labels.items():
            if (lab[:, :, k] > 0.5).any():
                ax.contour(lab[:, :, k], levels=[0.5], extent=ext, origin="lower",
                           colors=[colour(name)], linewidths=1.2)
        ax.set_title(f"z = {origin[2] + (k + 0.5) * voxel_nm:.1f} nm")
        ax.set_xlabel("y (nm)")
        ax.set_ylabel("x (nm)")
    from matplotlib.lines import Line2D
    fig.legend([Line2D([], [], color=colour(n)) for n in labels], list(labels), loc="upper center",
               ncol=len(labels), fontsize=8, title="voxel sums; outlines: each method's L1_2 region")
    fig.tight_layout(rect=(0, 0, 1, 0.85))
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


def plot_phase_sdms(path, sdms: dict, dz_edges, z_edges):
    """Per pair: z-SDMs of the L1_2 and FCC phases (normalised per reference) and the L1_2 zx-SDM."""
    pairs = sorted({p for phase in sdms.values() for p in phase})
    fig, axes = plt.subplots(2, len(pairs), figsize=(3.6 * len(pairs), 6.4), squeeze=False)
    c = 0.5 * (z_edges[1:] + z_edges[:-1])
    for j, pair in enumerate(pairs):
        for phase, colour in (("fcc", "tab:blue"), ("l12", "tab:red")):
            if pair in sdms.get(phase, {}):
                zx, z, n_ref = sdms[phase][pair]
                axes[0, j].plot(c, z / max(n_ref, 1), lw=0.7, color=colour, label=f"{phase} ({n_ref} refs)")
        axes[0, j].set_title(f"{pair} z-SDM")
        axes[0, j].set_xlabel("dz (nm)")
        axes[0, j].legend(fontsize=7)
        if pair in sdms.get("l12", {}):
            zx = sdms["l12"][pair][0]
            axes[1, j].imshow(zx, origin="lower", cmap="gray",
                              extent=(dz_edges[0], dz_edges[-1], dz_edges[0], dz_edges[-1]))
        axes[1, j].set_title(f"{pair} zx-SDM, L1_2 voxels")
        axes[1, j].set_xlabel("dx (nm)")
        axes[1, j].set_ylabel("dz (nm)")
    axes[0, 0].set_ylabel("pairs per reference ion")
    _save(fig, path)


def plot_response(path, response: dict):
    """The model's median L1_2 probability against a cube's L1_2 share (held-out specimens)."""
    fig, a = plt.subplots(figsize=(5, 4))
    a.plot(response["l12_fraction"], response["median_probability"], "o-")
    a.set_xscale("symlog", linthresh=0.01)
    a.set_xlabel("L1_2 share of the cube's ions")
    a.set_ylabel("median L1_2 probability")
    a.set_title("model response (model card)")
    _save(fig, path)


def plot_proxigram(path, analyses: dict, min_ions: int = 10):
    """Proxigram of every method (contracts/analyses.py): at.% of each element against the signed
    distance to its precipitate/matrix interface, with counting errors; bins of fewer than
    `min_ions` ions are left out (their 0 % or 100 % with a zero binomial error would mislead)."""
    elements = next(iter(analyses.values()))["elements"]
    fig, axes = plt.subplots(1, len(elements), figsize=(4 * len(elements), 3.8), squeeze=False)
    for j, el in enumerate(elements):
        ax = axes[0, j]
        for name, r in analyses.items():
            if el not in r["elements"]:
                continue
            k = r["elements"].index(el)
            ok = r["proxigram_ion_count"] >= min_ions
            if ok.any():
                ax.errorbar(r["proxigram_distance_nm"][ok], r["proxigram_at_pct"][ok, k],
                            yerr=r["proxigram_at_pct_error"][ok, k], color=colour(name), lw=1.2, capsize=2,
                            marker=".", ms=4, label=name)
        ax.axvline(0, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("distance to interface (nm), < 0 matrix, > 0 precipitate")
        ax.set_ylabel(f"{el} (at.%)")
        ax.set_title(el)
    if axes[0, 0].get_legend_handles_labels()[0]:
        axes[0, 0].legend(fontsize=7)
    _save(fig, path)


def plot_size_distributions(path, analyses: dict):
    """Equivalent radii of every method: precipitates inside the data (solid), cut by its edge
    (dashed, radii lower bounds)."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, r in analyses.items():
        e = r["size_edges_nm"]
        lab = f"{name}: {r['count']} + {r['count_at_edge']} at edge"
        if r["count"] > 0:
            lab += f", r = {r['radius_mean_nm']:.2f}" + (f" +- {r['radius_sd_nm']:.2f}" if r["count"] > 1 else "") + " nm"
        ax.stairs(r["size_histogram"], e, color=colour(name), lw=1.6, label=lab)
        if r["count_at_edge"]:
            ax.stairs(r["size_histogram_at_edge"], e, color=colour(name), lw=1.0, ls="--")
    ax.set_xlabel("equivalent radius (nm)")
    ax.set_ylabel("precipitates")
    ax.set_title("size distribution (dashed: touching the data's edge)")
    ax.legend(fontsize=7)
    _save(fig, path)
