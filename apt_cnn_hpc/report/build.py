"""`apt-cnn report SCAN.h5 --out DIR`: PNG figures, summary.json and index.html of a segmented scan.

The page checks its own images when it loads: its title becomes "report ok: N images" or
"report broken: <names>", so a headless browser (and a test) can tell at once.
"""
import html
import json
import shutil
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..errors import InputError
from ..fileutil import atomic_directory
from ..segment.voxels import read_voxel_map
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


def _read_segmented(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        if "precipitates" not in f:
            raise InputError(path, "not segmented yet: run `apt-cnn segment` first")
        p = f["precipitates"]
        out = {"tables": {m: {k: g[k][:] for k in ("radius_nm", "touches_edge")} for m, g in p.items()},
               "labels": {m: g["voxel_label"][:] for m, g in p.items()},
               "segment_summary": json.loads(p.attrs["comparison"]),
               "segment_config": json.loads(p.attrs["config"]),
               "cube_probability": f["cubes/probability"][:],
               "scan_attrs": {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()},
               "sdms": {}}
        if "phase_sdm" in f:
            for phase, pairs in f["phase_sdm"].items():
                for pair, g in pairs.items():
                    out["sdms"].setdefault(phase, {})[pair] = (g["zx"][:], g["z"][:], int(g.attrs["n_reference"]))
                    out["sdm_edges"] = (g.attrs["dz_dx_edges_nm"][:], g.attrs["z_edges_nm"][:])
    out["comparison"] = out["segment_summary"]["comparison"]
    return out


def _figure_list(out: Path, seg: dict, vm) -> list:
    """Write every figure into `out`; returns (file, caption) pairs."""
    threshold = seg["segment_config"]["threshold"]
    made = []
    figures.plot_probability_histograms(out / "probabilities.png", seg["cube_probability"], vm.scaled_sum(),
                                         threshold, vm.full_window)
    made.append(("probabilities.png", "L1_2 probability of every evaluated 4 nm cube (left, as the paper's "
                 "Supplementary Figure 3) and the voxel sums with the threshold (right, Figure 5a)."))
    figures.plot_comparison(out / "size_distribution.png", seg["tables"], seg["comparison"])
    made.append(("size_distribution.png", "Precipitate size distributions (equivalent-sphere radius) of the "
                 "CNN and the isocomposition baseline (Supplementary Figure 4, Figure 6d)."))
    figures.plot_slices(out / "slices.png", vm.scaled_sum(), seg["labels"], vm.grid.origin_nm, vm.grid.voxel_nm,
                        vm.full_window)
    made.append(("slices.png", "Slices through the voxel map (scaled sums) with each method's precipitates "
                 "outlined."))
    if seg["sdms"]:
        figures.plot_phase_sdms(out / "phase_sdms.png", seg["sdms"], *seg["sdm_edges"])
        made.append(("phase_sdms.png", "Species-specific z-SDMs of ions in L1_2 voxels vs FCC voxels and the "
                     "L1_2 zx-SDMs (Figure 6b/c, Supplementary Figure 5)."))
    card = vm.provenance.get("model_card", {})
    response = card.get("metrics", {}).get("response")
    if response:
        figures.plot_response(out / "response.png", response)
        made.append(("response.png", "The model's response to partly ordered cubes (held-out specimens)."))
    roc = Path(vm.provenance.get("model_dir", "")) / "roc.png"
    if roc.is_file():
        shutil.copyfile(roc, out / "roc.png")
        made.append(("roc.png", f"ROC of the model on held-out specimens (AUC "
                     f"{card.get('metrics', {}).get('heldout_specimen_auc', float('nan')):.4f})."))
    return made


def _summary(scan: Path, seg: dict, vm, score: dict | None) -> dict:
    card = vm.provenance.get("model_card", {})
    s = {"scan": scan.name, "software_version": __version__, "scan_attributes": seg["scan_attrs"],
         "grid_shape": list(vm.grid.shape), "voxel_nm": vm.grid.voxel_nm, "origin_nm": list(vm.grid.origin_nm),
         "segment_config": seg["segment_config"], "comparison": seg["comparison"],
         "uncertain_voxels": seg["segment_summary"].get("uncertain_voxels"),
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
        iou = f"{c['voxel_overlap_with_cnn_iou']:.2f}" if c["voxel_overlap_with_cnn_iou"] is not None else "-"
        f1 = ""
        if "score" in summary and name in summary["score"]["methods"]:
            m = summary["score"]["methods"][name]
            f1 = f"{m['f1']:.3f} (oracle {m['oracle_f1']:.3f})"
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{c['count']}</td><td>{r}</td>"
                    f"<td>{100 * c['volume_fraction']:.2f}</td><td>{iou}</td><td>{f1}</td></tr>")
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
threshold {summary['segment_config']['threshold']}; model {str(summary['model_sha256'])[:12]};
apt-cnn-hpc {html.escape(summary['software_version'])}.</p>
<table><tr><th>method</th><th>precipitates</th><th>mean radius (nm)</th><th>volume %</th>
<th>voxel IoU with CNN</th><th>per-ion F1 vs truth</th></tr>
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
    seg = _read_segmented(scan)
    score = None
    if score_path:
        try:
            score = json.loads(Path(score_path).read_text())
        except (OSError, ValueError):
            raise InputError(score_path, "not a readable JSON file from `apt-cnn score`") from None
    with atomic_directory(out, overwrite) as tmp:
        made = _figure_list(tmp, seg, vm)
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
