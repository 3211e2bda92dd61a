"""`apt-cnn report SCAN.h5 --out DIR`: PNG figures, summary.json and index.html of a segmented scan.

The page checks its own images when it loads: its title becomes "report ok: N images" or
"report broken: <names>", so a headless browser (and a test) can tell at once.
"""
import html
import json
import shutil
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import InputError
from ..fileutil import atomic_directory
from ..contracts.scan_file import read_attrs, read_cubes, read_voxel_map
from ..contracts.analyses import has_analyses, read_analyses
from ..contracts.segmentation import read_segmentation
from . import figures

CHECK_SCRIPT = """<script>
window.addEventListener("load", function () {
  var bad = [], imgs = document.images;
  for (var i = 0; i < imgs.length; i++) {
    if (!imgs[i].complete || imgs[i].naturalWidth === 0) bad.push(imgs[i].getAttribute("src"));
  }
  document.title = bad.length ? "report broken: " + bad.join(", ") : "report ok: " + imgs.length + " images";
  document.body.setAttribute("data-images-ok", bad.length ? "false" : "true");
});
</script>"""


def _figure_list(out: Path, seg, vm, cube_probability) -> list:
    """Write every figure into `out`; returns (file, caption) pairs."""
    threshold = seg.config["methods"].get("paper", {}).get("threshold", 62)
    made = []
    figures.plot_probability_histograms(out / "probabilities.png", cube_probability, vm.scaled_sum(),
                                         threshold, vm.full_window)
    made.append(("probabilities.png", "L1_2 probability of every evaluated 4 nm cube (left, as the paper's "
                 "Supplementary Figure 3) and the voxel sums with the paper's threshold (right, Figure 5a)."))
    figures.plot_comparison(out / "size_distribution.png", {n: r.table for n, r in seg.methods.items()},
                            seg.comparison["comparison"])
    made.append(("size_distribution.png", "Precipitate size distributions (equivalent-sphere radius) of every "
                 "method side by side (Supplementary Figure 4, Figure 6d)."))
    figures.plot_slices(out / "slices.png", vm.scaled_sum(),
                        {n: r.voxel_l12_fraction for n, r in seg.methods.items() if r.voxel_l12_fraction is not None},
                        vm.grid.origin_nm, vm.grid.voxel_nm, vm.full_window)
    made.append(("slices.png", "Slices through the voxel map (scaled sums) with each method's L1_2 "
                 "region outlined (voxels where it calls half the ions L1_2)."))
    if seg.phase_sdm:
        figures.plot_phase_sdms(out / "phase_sdms.png", seg.phase_sdm, *seg.sdm_edges)
        made.append(("phase_sdms.png", f"Species-specific z-SDMs of the ions {seg.default} calls L1_2 vs FCC and "
                     "the L1_2 zx-SDMs (Figure 6b/c, Supplementary Figure 5)."))
    card = vm.provenance.get("model_card", {})
    response = card.get("metrics", {}).get("response")
    if response:
        figures.plot_response(out / "response.png", response)
        made.append(("response.png", "The model's response to partly ordered cubes (held-out specimens)."))
    for name, caption in (("roc.png", "ROC of the model on held-out specimens (AUC {:.4f}).".format(
            card.get("metrics", {}).get("heldout_specimen_auc", float("nan")))),
                          ("reliability.png", "Reliability of the model's calibrated cube probabilities "
                           "(model card: expected calibration error on held-out maps).")):
        src = Path(vm.provenance.get("model_dir", "")) / name
        if src.is_file():
            shutil.copyfile(src, out / name)
            made.append((name, caption))
    return made


def _coverage(share) -> str:
    if share is None:
        return "Plane visibility: not in this scan (made before it existed); no ion is marked undetermined."
    return (f"Lattice planes resolved at {100 * share:.1f} % of the ions; the others are undetermined (id -1) "
            "unless they belong to a precipitate whose own superlattice is seen, and are left out of the matrix "
            "statistics, the volume fraction and the number density.")


def _analyses(scan: Path, seg) -> tuple[dict, str | None]:
    """The analyses of the scan's current segmentation ({} and why not, when there are none)."""
    if not has_analyses(scan):
        return {}, "this segmentation has no analyses (segmented by an earlier version): rerun `apt-cnn segment`"
    a = read_analyses(scan)
    if not a.matches(seg):
        return {}, "the stored analyses belong to an earlier segmentation: rerun `apt-cnn segment`"
    return a.methods, None


def _analysis_figures(out: Path, analyses: dict) -> list:
    if not analyses:
        return []
    figures.plot_proxigram(out / "proxigram.png", analyses)
    figures.plot_size_distributions(out / "analysis_sizes.png", analyses)
    return [("proxigram.png", "Proxigram of every method: composition against the signed distance of each ion "
             "to the nearest ion of the other phase (negative in the matrix, positive inside precipitates), "
             "ions of all precipitates pooled, 0.2 nm bins of at least 10 ions, error bars the counting error sqrt(p(1-p)/n)."),
            ("analysis_sizes.png", "Equivalent radii of every method: precipitates inside the data (solid) and "
             "touching its edge (dashed; counted apart, their radii lower bounds).")]


def _analysis_summary(analyses: dict) -> dict:
    """The numbers of the analyses (arrays of the proxigram and histograms stay in the scan file)."""
    keys = ("count", "count_at_edge", "radius_mean_nm", "radius_sd_nm", "analysed_volume_nm3", "volume_method",
            "convex_hull_volume_nm3", "occupied_voxel_volume_nm3", "determined_ion_share",
            "number_density_per_m3", "number_density_per_m3_error", "number_density_per_nm3",
            "number_density_per_nm3_error", "volume_fraction", "volume_fraction_error", "volume_fraction_ci95",
            "bootstrap_resamples", "elements", "matrix_at_pct", "matrix_at_pct_error", "matrix_atom_count",
            "precipitate_at_pct", "precipitate_at_pct_error", "precipitate_atom_count")
    def plain(v):                     # strict JSON: no NaN (an sd of one precipitate is None)
        if isinstance(v, np.ndarray):
            return [plain(x) for x in v.tolist()]
        if isinstance(v, float) and not np.isfinite(v):
            return None
        return v.item() if isinstance(v, np.generic) else v
    return {m: {k: plain(r[k]) for k in keys if k in r} for m, r in analyses.items()}


def _num(v, fmt, scale=1.0):
    return "-" if v is None or not np.isfinite(v) else format(v * scale, fmt)


def _composition(a: dict, phase: str) -> str:
    pct, err = a[f"{phase}_at_pct"], a[f"{phase}_at_pct_error"]
    return ", ".join(f"{html.escape(el)} {_num(p, '.2f')}&plusmn;{_num(e, '.2f')}"
                     for el, p, e in zip(a["elements"], pct, err))


def _analysis_rows(summary: dict) -> str:
    rows = []
    for name, a in summary.get("analyses", {}).items():
        r = f"{_num(a['radius_mean_nm'], '.2f')} &plusmn; {_num(a['radius_sd_nm'], '.2f')}" if a["count"] else "-"
        lo, hi = a["volume_fraction_ci95"]
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{a['count']} + {a['count_at_edge']}</td><td>{r}</td>"
                    f"<td>{_num(a['number_density_per_m3'], '.2f', 1e-24)} &plusmn; "
                    f"{_num(a['number_density_per_m3_error'], '.2f', 1e-24)}</td>"
                    f"<td>{_num(a['volume_fraction'], '.2f', 100)} &plusmn; {_num(a['volume_fraction_error'], '.2f', 100)}"
                    f" ({_num(lo, '.2f', 100)}-{_num(hi, '.2f', 100)})</td>"
                    f"<td>{_composition(a, 'matrix')}</td><td>{_composition(a, 'precipitate')}</td></tr>")
    return "\n".join(rows)


def _analysis_section(summary: dict) -> str:
    if not summary.get("analyses"):
        note = summary.get("analyses_note")
        return f"<h2>Analyses</h2><p>{html.escape(note)}</p>" if note else ""
    volume = next(iter(summary["analyses"].values()))
    return f"""<h2>Analyses of the precipitates</h2>
<p>Per method, from its per-ion result. Analysed volume {volume['analysed_volume_nm3']:.0f} nm<sup>3</sup>
({html.escape(volume['volume_method'])}; the occupied 1 nm voxels give
{volume['occupied_voxel_volume_nm3']:.0f} nm<sup>3</sup>). Number density: precipitates touching the data's
edge count one half, error from Poisson counting. Volume fraction: share of the determined ranged ions in
precipitates, &plusmn; the sd of {volume['bootstrap_resamples']} bootstrap resamples of the precipitates
(95 % interval in brackets). Compositions in at.% of the ranged ions (matrix: id 0; undetermined ions
excluded) &plusmn; the counting error sqrt(p(1-p)/n).</p>
<table><tr><th>method</th><th>precipitates (inside + at edge)</th><th>mean radius &plusmn; sd (nm, inside)</th>
<th>number density (10<sup>24</sup> m<sup>-3</sup>)</th><th>volume fraction (%)</th>
<th>matrix (at.%)</th><th>precipitates (at.%)</th></tr>
{_analysis_rows(summary)}
</table>"""


def _summary(scan: Path, seg, vm, score: dict | None) -> dict:
    card = vm.provenance.get("model_card", {})
    s = {"scan": scan.name, "software_version": __version__, "scan_attributes": read_attrs(scan),
         "grid_shape": list(vm.grid.shape), "voxel_nm": vm.grid.voxel_nm, "origin_nm": list(vm.grid.origin_nm),
         "default_method": seg.default, "segment_config": seg.config, "comparison": seg.comparison["comparison"],
         "uncertain_voxels": seg.comparison.get("uncertain_voxels"),
         "planes_resolved_ion_share": seg.comparison.get("planes_resolved_ion_share"),
         "model_sha256": vm.provenance.get("model_sha256"),
         "model_metrics": {k: v for k, v in card.get("metrics", {}).items() if not isinstance(v, (dict, list))},
         "input": vm.provenance.get("inputs", {})}
    if score:
        s["score"] = score
    return s


def _table_rows(summary: dict) -> str:
    rows = []
    for name, c in summary["comparison"].items():
        r = f"{c['mean_radius_nm']:.2f} &plusmn; {c['sd_radius_nm'] or 0:.2f}" if c["count"] else "-"
        iou = c["ion_overlap_with_default_iou"]
        f1 = ""
        if "score" in summary and name in summary["score"]["methods"]:
            m = summary["score"]["methods"][name]
            f1 = f"{m['f1']:.3f} (oracle {m['oracle_f1']:.3f})"
        label = f"<b>{html.escape(name)}</b> (default)" if name == summary["default_method"] else html.escape(name)
        rows.append(f"<tr><td>{label}</td><td>{html.escape(c['title'])}</td><td>{c['count']}</td><td>{r}</td>"
                    f"<td>{100 * c['volume_fraction']:.2f}</td><td>{'-' if iou is None else f'{iou:.2f}'}</td>"
                    f"<td>{f1}</td></tr>")
    return "\n".join(rows)


def write_html(path: Path, summary: dict, made: list):
    attrs = summary["scan_attributes"]
    figs = "\n".join(f'<figure><img src="{html.escape(f)}" alt="{html.escape(f)}">'
                     f"<figcaption>{html.escape(c)}</figcaption></figure>" for f, c in made)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>apt-cnn report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}} img{{max-width:100%}}
table{{border-collapse:collapse}} td,th{{border:1px solid #999;padding:3px 8px}}</style>
{CHECK_SCRIPT}</head>
<body>
<h1>L1_2 domains in {html.escape(Path(summary['scan']).name)}</h1>
<p>{attrs.get('n_ions', '?')} ions; {attrs.get('cubes_evaluated', '?')} cubes evaluated,
{attrs.get('cubes_skipped_few_references', '?')} skipped (fewer than {attrs.get('min_reference', '?')} reference ions);
voxel grid {' x '.join(map(str, summary['grid_shape']))} of {summary['voxel_nm']} nm;
default method {html.escape(summary['default_method'])}; model {str(summary['model_sha256'])[:12]};
apt-cnn-hpc {html.escape(summary['software_version'])}.</p>
<p>{_coverage(summary.get('planes_resolved_ion_share'))}</p>
<table><tr><th>method</th><th>what it does</th><th>precipitates</th><th>mean radius (nm)</th><th>volume %</th>
<th>ion IoU with the default</th><th>per-ion F1 vs truth</th></tr>
{_table_rows(summary)}
</table>
{_analysis_section(summary)}
{figs}
<p>All numbers: <a href="summary.json">summary.json</a>.</p>
</body></html>
"""
    path.write_text(page, encoding="utf-8")


def build_report(scan, out, score_path=None, overwrite: bool = False) -> Path:
    scan = Path(scan)
    vm = read_voxel_map(scan)
    seg = read_segmentation(scan, per_ion=False)
    score = None
    if score_path:
        try:
            score = json.loads(Path(score_path).read_text())
        except (OSError, ValueError):
            raise InputError(score_path, "not a readable JSON file from `apt-cnn score`") from None
    with atomic_directory(out, overwrite) as tmp:
        made = _figure_list(tmp, seg, vm, read_cubes(scan).probability)
        analyses, why_not = _analyses(scan, seg)
        made += _analysis_figures(tmp, analyses)
        summary = _summary(scan, seg, vm, score)
        summary["analyses"] = _analysis_summary(analyses)
        if why_not:
            summary["analyses_note"] = why_not
        summary["figures"] = [f for f, _ in made]
        (tmp / "summary.json").write_text(json.dumps(summary, indent=1, default=_jsonable))
        write_html(tmp / "index.html", summary, made)
    return Path(out) / "index.html"


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def run(args):
    print(f"report: {build_report(args.scan, args.out, args.score, args.overwrite).resolve()}")
