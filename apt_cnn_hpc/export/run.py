"""`apt-cnn export SCAN.h5 --nexus OUT.nxs`: the scan's reconstruction, ranging and recognition
results as NeXus (NXapm + NXapm_paraprobe_clusterer_results, layout in export/nexus.py).

The template is filled here from the contract readers; pynxtools (the optional extra
`apt-cnn-hpc[nexus]`) validates each entry against its application definition and writes the
file, under a temporary name renamed when complete."""
import logging
import os
import time
from pathlib import Path

from ..contracts.scan_file import read_voxel_map
from ..contracts.segmentation import read_segmentation
from ..errors import InputError
from ..fileutil import atomic_output, check_output, sha256_file
from ..io import read_ions, read_ranges
from ..segment.inputs import locate
from .nexus import APPDEFS, ExportSource, nxapm_template

log = logging.getLogger(__name__)
EXTRA = "pip install 'apt-cnn-hpc[nexus]'"


def pynxtools():
    """pynxtools' dataconverter modules, or a one-line error naming the extra that brings them."""
    for noisy in ("pynxtools", "pint"):   # problems are collected and reported below, not logged
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        from pynxtools.dataconverter import helpers, template, validation, writer
    except ImportError as exc:
        raise InputError(None, f"NeXus export needs pynxtools ({exc.name or exc} is not installed): "
                               f"{EXTRA}") from None
    return helpers, template, validation, writer


def is_simulation(input_path: Path) -> bool:
    """A reconstruction made by `apt-cnn specimen` has its ground truth beside it (P.pos, P_truth.h5)."""
    return input_path.with_name(f"{input_path.stem}_truth.h5").is_file()


def load_source(scan_path, method=None, input_override=None, range_override=None) -> ExportSource:
    """Everything the export reads: the scan and its segmentation, and the reconstruction and
    range file the scan names (checked by SHA-256)."""
    scan_path = Path(scan_path)
    voxels = read_voxel_map(scan_path)
    seg = read_segmentation(scan_path)
    method = method or seg.default
    if method not in seg.methods:
        raise InputError(scan_path, f"no segmentation by method '{method}' (has: {', '.join(seg.methods)})")
    paths = {role: locate(scan_path, voxels.provenance, role, override)
             for role, override in (("input", input_override), ("range", range_override))}
    ions = read_ions(paths["input"], drop_invalid=bool(voxels.provenance["config"].get("drop_invalid", False)))
    if len(ions) != len(seg.methods[method].ion_precipitate_id):
        raise InputError(paths["input"], f"holds {len(ions)} ions but the segmentation labels "
                                         f"{len(seg.methods[method].ion_precipitate_id)}")
    files = {role: {"path": str(p), "sha256": voxels.provenance["inputs"][role]["sha256"]}
             for role, p in paths.items()}
    return ExportSource(scan_path, sha256_file(scan_path), voxels, seg, method, ions,
                        read_ranges(paths["range"]), files, is_simulation(paths["input"]))


def entry_templates(template: dict) -> list:
    """Per entry of OUT.nxs: (entry, application definition, its pynxtools Template, NXDL path)."""
    helpers, template_mod, _, _ = pynxtools()
    out = []
    for entry, appdef in APPDEFS.items():
        root, nxdl_path = helpers.get_nxdl_root_and_path(appdef)
        data = template_mod.Template()
        helpers.generate_template_from_nxdl(root, data)
        for key, value in template.items():
            if key.startswith(f"/ENTRY[{entry}]/"):
                data[key] = value
        helpers.write_nexus_def_to_entry(data, entry, appdef)
        out.append((entry, appdef, data, nxdl_path))
    return out


def write_nexus(template: dict, out: Path, overwrite: bool):
    """Validate every entry of `template` against its application definition (pynxtools'
    dataconverter validation), then write them with pynxtools' writer, all or nothing."""
    helpers, _, validation, writer = pynxtools()
    entries = entry_templates(template)
    for entry, appdef, data, _ in entries:
        helpers.collector.clear()
        if not validation.validate_dict_against(appdef, data):
            problems = sorted(helpers.collector.get())
            raise RuntimeError(f"/{entry} does not validate against {appdef}: {'; '.join(problems[:3])}")
    first = entries[0][2]
    first["/@default"] = entries[0][0]
    helpers.add_default_root_attributes(first, out.name)
    with atomic_output(out, overwrite) as tmp:
        for i, (_, _, data, nxdl_path) in enumerate(entries):
            writer.Writer(data, nxdl_path, str(tmp), append=i > 0).write()


def run(args):
    t0 = time.perf_counter()
    out = Path(args.nexus)
    check_output(out, args.overwrite)
    pynxtools()        # before reading anything: without the extra, say so at once
    src = load_source(args.scan, args.method, args.input, args.range)
    write_nexus(nxapm_template(src), out, args.overwrite)
    log.info("export: %d ions, %d precipitates of %s -> %s (%.1f MB, %.1f s)", len(src.ions),
             src.segmentation.methods[src.method].count, src.method, out, os.path.getsize(out) / 1e6,
             time.perf_counter() - t0)
