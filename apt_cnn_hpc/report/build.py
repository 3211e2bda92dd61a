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


def _summary(scan: Path, seg, vm, score: dict | None) -> dict:
    card = vm.provenance.get("model_card", {})
    s = {"scan": scan.name, "software_version": __version__, "scan_attributes": read_attrs(scan),
         "grid_shape": list(vm.grid.shape), "voxel_nm": vm.grid.voxel_nm, "origin_nm": list(vm.grid.origin_nm),
         "default_method": seg.default, "segment_config": seg.config, "comparison": seg.comparison["comparison"],
         "uncertain_voxels": seg.comparison.get("uncertain_voxels"),
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
<table><tr><th>method</th><th>what it does</th><th>precipitates</th><th>mean radius (nm)</th><th>volume %</th>
<th>ion IoU with the default</th><th>per-ion F1 vs truth</th></tr>
{_table_rows(summary)}
</table>
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
        summary = _summary(scan, seg, vm, score)
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
