"""OUT.nxs of `apt-cnn export --nexus`: a scan's reconstruction, ranging and recognition results
as a NeXus template dict (keys like `/ENTRY[entry1]/...`, the way pynxtools readers return their
Template), filled only from the project's contract readers; pynxtools writes and validates it
(export/run.py). Two entries, each valid against the application definition it names:

/entry1  NXapm: the reconstruction and its ranging
  definition = "NXapm"; start_time: when the scan was made (a POS/APT file does not record the
  measurement's time); operation_mode = "apt"; experiment_description
  profiling/program1/program = "apt-cnn-hpc" (@version)
  note_scan/                   NXnote: the scan file (file_name, checksum = SHA-256, algorithm) and its
                               provenance as JSON in `description` (config, input SHA-256, model hash)
  note_segmentation/           NXnote: the segmentation's provenance and config (JSON)
  reconstruction_reference_frame/  the reconstruction's right-handed x, y, z (nm)
  specimen/is_simulation (the input has the ground truth of `apt-cnn specimen` beside it: P_truth.h5
                               for P.pos), atom_types (the elements of the range file)
  atom_probe/reconstruction/
      reconstructed_positions  float32 [n, 3] nm, one row per ion in the input file's record order
      source/                  the input POS/ePOS/APT/CSV: file_name, checksum (SHA-256), algorithm
      naive_discretization/data/  NXdata: intensity uint32 [n_z, n_y, n_x] ions per scan voxel,
                               axis_z, axis_y, axis_x voxel centres in nm
  atom_probe/mass_to_charge_conversion/mass_to_charge   float32 [n] Da
  atom_probe/ranging/source/   the range file: file_name, checksum (SHA-256), algorithm
  atom_probe/ranging/peak_identification/
      ion0                     the unknown type (unranged ions)
      ion<k>                   species k-1 of the range file: name, nuclide_hash, nuclide_list,
                               charge_state (0: not known from an RRNG/RNG), mass_to_charge_range [r, 2] Da
      iontypes                 uint8 [n]: the ion<k> of every ion (0 unranged)
  (every program1 there names apt-cnn-hpc, which read the files; the software that reconstructed
  and ranged the data is not recorded in POS or RRNG files)

/entry2  NXapm_paraprobe_clusterer_results: the precipitates of one recognition method (the
         segmentation's default unless --method), shaped as paraprobe-clusterer holds clusters
  common/status = "success", identifier_analysis, config (the scan file: name, SHA-256),
  common/program1/program = "apt-cnn-hpc" (@version), common/paraprobe_reference_frame (nm)
  cluster_analysis1/           NXapm_paraprobe_tool_process; description: the method's name and title
      window/                  every ion of the reconstruction (number_of_ions, bitdepth 8, mask)
      parameters/              NXparameters: method (name), params (JSON), default_method
      ion_labels/              NXdata, the per-ion result as the clusterer's targets and labels:
          targets              uint32 [m] rows of /entry1/.../reconstructed_positions (the input's
                               record order, 0-based) of the ions the method determined
          numerical_label      uint32 [m] 0 matrix, k >= 1 precipitate k (unranged ions too); ions the
                               method left undetermined (ion_precipitate_id -1) are not targets
      precipitates/            NXdata, the precipitate table against its axis:
          cluster_id           int32 [k] 1..k (the numerical_label of each precipitate)
          number_of_members    uint32 [k] targets labelled k
          radius_nm, volume_nm3, centroid_nm [k, 3], ion_count, ion_count_per_species [k, s],
          composition_at_pct, composition_sd_at_pct [k, e] (species and elements in @long_name),
          touches_edge (uint8), n_voxels (voxel methods): the segmentation's table as stored
      voxel_l12_fraction/      NXdata: l12_fraction float32 [nx, ny, nz] (share of each voxel's
                               ranged ions the method calls L1_2), axis_x, axis_y, axis_z voxel centres nm
      voxel_probability_sum/   NXdata: the scan's summed cube probabilities (0..64) on the same axes
The clusterer definition names only DBSCAN results (dbscanID, with eps and min_pts), which no
method here is, so labels and table are NXdata of the analysis (NXprocess allows them) with the
clusterer's field names. pynxtools 0.16 validates both entries without a problem in the dict it
writes from; its file validator also flags naive_discretization's axis @units (which are written),
because NXapm declares them as attributes rather than as units (tests/test_export.py).
"""
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..contracts.scan_file import VoxelMap
from ..contracts.segmentation import Segmentation
from ..io import Ions, RangeTable
from ..io.ifes import ifes_module

RECONSTRUCTION, RESULTS = "entry1", "entry2"
APPDEFS = {RECONSTRUCTION: "NXapm", RESULTS: "NXapm_paraprobe_clusterer_results"}
PROGRAM = "apt-cnn-hpc"
MASK_BITDEPTH = 8


@dataclass
class ExportSource:
    """Everything the export reads, each through its contract reader."""
    scan_path: Path
    scan_sha256: str
    voxels: VoxelMap
    segmentation: Segmentation
    method: str
    ions: Ions
    ranges: RangeTable
    files: dict            # role ("input", "range") -> {"path", "sha256"}
    is_simulation: bool


def _program(t: dict, prefix: str):
    t[f"{prefix}programID[program1]/program"] = PROGRAM
    t[f"{prefix}programID[program1]/program/@version"] = __version__


def _file_note(t: dict, prefix: str, path, sha256: str, kind: str):
    t[f"{prefix}type"] = kind
    t[f"{prefix}file_name"] = str(path)
    t[f"{prefix}checksum"] = sha256
    t[f"{prefix}algorithm"] = "SHA256"


def _frame(t: dict, prefix: str, names: tuple):
    """The reconstruction's Cartesian frame (positions are given in it, in nm)."""
    t[f"{prefix}type"] = "cartesian"
    for axis, vector in zip(names, np.eye(3)):
        t[f"{prefix}{axis}"] = vector
        t[f"{prefix}{axis}/@units"] = "nm"


def _voxel_axes(t: dict, prefix: str, grid, order: str, named: bool):
    """Voxel-centre axes in nm, listed in the array's index `order` (e.g. "xyz" or "zyx");
    `named`: the application definition names the axis fields (else they are AXISNAME)."""
    t[f"{prefix}@axes"] = [f"axis_{a}" for a in order]
    for i, a in enumerate(order):
        d = "xyz".index(a)
        centres = grid.origin_nm[d] + (np.arange(grid.shape[d]) + 0.5) * grid.voxel_nm
        key = f"{prefix}axis_{a}" if named else f"{prefix}AXISNAME[axis_{a}]"
        t[f"{prefix}@AXISNAME_indices[@axis_{a}_indices]"] = np.uint32(i)
        t[key] = centres.astype(np.float32)
        t[f"{key}/@units"] = "nm"
        t[f"{key}/@long_name"] = f"{a} (nm), voxel centre"


def _reconstruction(t: dict, src: ExportSource):
    e = f"/ENTRY[{RECONSTRUCTION}]/"
    prov = src.voxels.provenance
    t[f"{e}start_time"] = prov["created_utc"]
    t[f"{e}operation_mode"] = "apt"
    t[f"{e}experiment_description"] = (
        f"Reconstruction and ranging behind the scan {src.scan_path.name}, exported by {PROGRAM} "
        f"{__version__}; start_time is when the scan was made. The recognition results are in "
        f"/{RESULTS}.")
    _program(t, f"{e}profiling/")
    _file_note(t, f"{e}noteID[note_scan]/", src.scan_path.name, src.scan_sha256, "apt-cnn-hpc scan file")
    t[f"{e}noteID[note_scan]/description"] = json.dumps(prov, default=str)
    seg = src.segmentation
    t[f"{e}noteID[note_segmentation]/type"] = "apt-cnn-hpc segmentation provenance"
    t[f"{e}noteID[note_segmentation]/file_name"] = src.scan_path.name
    t[f"{e}noteID[note_segmentation]/description"] = json.dumps(
        {"provenance": seg.provenance, "config": seg.config}, default=str)
    _frame(t, f"{e}NAMED_reference_frameID[reconstruction_reference_frame]/", ("x", "y", "z"))
    elements = sorted({el for comp in src.ranges.composition for el in comp})
    t[f"{e}specimen/is_simulation"] = bool(src.is_simulation)
    t[f"{e}specimen/atom_types"] = ", ".join(elements)

    ap = f"{e}atom_probeID[atom_probe]/"
    r = f"{ap}reconstruction/"
    _program(t, r)
    _file_note(t, f"{r}source/", src.files["input"]["path"], src.files["input"]["sha256"],
               Path(src.files["input"]["path"]).suffix.lstrip(".").upper())
    t[f"{r}reconstructed_positions"] = np.asarray(src.ions.xyz, np.float32)
    t[f"{r}reconstructed_positions/@units"] = "nm"
    n = f"{r}naive_discretization/"
    _program(t, n)
    d = f"{n}DATA[data]/"
    t[f"{d}title"] = f"Ions per {src.voxels.grid.voxel_nm:g} nm voxel of the scan's grid"
    t[f"{d}@signal"] = "intensity"
    t[f"{d}intensity"] = np.ascontiguousarray(src.voxels.ion_count.transpose(2, 1, 0), np.uint32)
    _voxel_axes(t, d, src.voxels.grid, "zyx", named=True)

    m = f"{ap}mass_to_charge_conversion/"
    _program(t, m)
    t[f"{m}mass_to_charge"] = np.asarray(src.ions.mq, np.float32)
    t[f"{m}mass_to_charge/@units"] = "Da"
    _ranging(t, src, ap)


def _ranging(t: dict, src: ExportSource, ap: str):
    utils = ifes_module("utils.utils")
    rg = f"{ap}ranging/"
    _program(t, rg)
    _file_note(t, f"{rg}source/", src.files["range"]["path"], src.files["range"]["sha256"],
               Path(src.files["range"]["path"]).suffix.lstrip(".").upper())
    p = f"{rg}peak_identification/"
    _program(t, p)
    ranges = src.ranges
    names = ["unranged"] + list(ranges.ion_names)
    comps = [{}] + list(ranges.composition or [{} for _ in ranges.ion_names])
    for k, (name, comp) in enumerate(zip(names, comps)):
        i = f"{p}ionID[ion{k}]/"
        atoms = [el for el, count in comp.items() for _ in range(count)]
        nuclide_hash = utils.create_nuclide_hash(atoms)
        t[f"{i}name"] = name
        t[f"{i}nuclide_hash"] = np.asarray(nuclide_hash, np.uint16)
        t[f"{i}nuclide_list"] = np.asarray(utils.nuclide_hash_to_nuclide_list(nuclide_hash), np.uint16)
        t[f"{i}charge_state"] = np.int8(0)
        sel = ranges.species == k - 1
        bounds = np.stack([ranges.lo[sel], ranges.hi[sel]], axis=1) if k else np.zeros((1, 2))
        t[f"{i}mass_to_charge_range"] = bounds.astype(np.float32)
        t[f"{i}mass_to_charge_range/@units"] = "Da"
    t[f"{p}number_of_ion_types"] = np.uint32(len(names))
    t[f"{p}maximum_number_of_atoms_per_molecular_ion"] = np.uint32(utils.MAX_NUMBER_OF_ATOMS_PER_ION)
    t[f"{p}iontypes"] = (ranges.label(src.ions.mq) + 1).astype(np.uint8)


def _results(t: dict, src: ExportSource):
    e = f"/ENTRY[{RESULTS}]/"
    seg, rec = src.segmentation, src.segmentation.methods[src.method]
    c = f"{e}common/"
    t[f"{c}status"] = "success"
    t[f"{c}identifier_analysis"] = np.uint32(1)
    _file_note(t, f"{c}config/", src.scan_path.name, src.scan_sha256, "apt-cnn-hpc scan file")
    _program(t, c)
    _frame(t, f"{c}paraprobe_reference_frame/", ("x", "y", "z"))
    for axis in "xyz":
        t[f"{c}paraprobe_reference_frame/{axis}_alias"] = f"reconstruction {axis}"

    a = f"{e}TASKPROCESSED[cluster_analysis1]/"
    t[f"{a}description"] = f"{src.method}: {rec.title}"
    n_ions = len(src.ions)
    w = f"{a}window/"
    t[f"{w}number_of_ions"] = np.uint32(n_ions)
    t[f"{w}bitdepth"] = np.uint32(MASK_BITDEPTH)
    t[f"{w}mask"] = np.packbits(np.ones(n_ions, bool))
    pr = f"{a}PARAMETERS[parameters]/"
    t[f"{pr}PARAMETER[method]"] = src.method
    t[f"{pr}PARAMETER[params]"] = json.dumps(rec.params)
    t[f"{pr}PARAMETER[default_method]"] = seg.default

    ids = rec.ion_precipitate_id
    targets = np.flatnonzero(ids >= 0)
    labels = ids[targets].astype(np.uint32)
    d = f"{a}DATA[ion_labels]/"
    t[f"{d}title"] = f"Per-ion result of {src.method}: 0 matrix, k >= 1 precipitate k"
    t[f"{d}@signal"] = "numerical_label"
    t[f"{d}@axes"] = ["targets"]
    t[f"{d}@AXISNAME_indices[@targets_indices]"] = np.uint32(0)
    t[f"{d}AXISNAME[targets]"] = targets.astype(np.uint32)
    t[f"{d}AXISNAME[targets]/@long_name"] = "record index (0-based) of the ion in the input file"
    t[f"{d}DATA[numerical_label]"] = labels

    d = f"{a}DATA[precipitates]/"
    t[f"{d}title"] = f"Precipitates of {src.method}, one row per numerical_label k >= 1"
    t[f"{d}@signal"] = "radius_nm"
    t[f"{d}@axes"] = ["cluster_id"]
    t[f"{d}@AXISNAME_indices[@cluster_id_indices]"] = np.uint32(0)
    t[f"{d}AXISNAME[cluster_id]"] = np.arange(1, rec.count + 1, dtype=np.int32)
    t[f"{d}DATA[number_of_members]"] = np.bincount(labels, minlength=rec.count + 1)[1:].astype(np.uint32)
    for key, value in rec.table.items():
        value = np.asarray(value)
        t[f"{d}DATA[{key}]"] = value.astype(np.uint8) if value.dtype == bool else value   # NX_NUMBER
        if key.endswith("_nm"):
            t[f"{d}DATA[{key}]/@units"] = "nm"
        elif key.endswith("_nm3"):
            t[f"{d}DATA[{key}]/@units"] = "nm^3"
    t[f"{d}DATA[ion_count_per_species]/@long_name"] = "species: " + ", ".join(rec.species)
    for key in ("composition_at_pct", "composition_sd_at_pct"):
        t[f"{d}DATA[{key}]/@long_name"] = "elements: " + ", ".join(rec.elements)

    grid = src.voxels.grid
    for name, signal, values, title in (
            ("voxel_l12_fraction", "l12_fraction", rec.voxel_l12_fraction,
             f"Share of each voxel's ranged ions that {src.method} calls L1_2"),
            ("voxel_probability_sum", "probability_sum", src.voxels.probability_sum,
             "Sum of the calibrated L1_2 probabilities of the scan's cubes covering each voxel")):
        d = f"{a}DATA[{name}]/"
        t[f"{d}title"] = title
        t[f"{d}@signal"] = signal
        t[f"{d}DATA[{signal}]"] = np.asarray(values, np.float32)
        _voxel_axes(t, d, grid, "xyz", named=False)


def nxapm_template(src: ExportSource) -> dict:
    """The template of OUT.nxs (see the module docstring), one key per field or attribute."""
    t: dict = {}
    _reconstruction(t, src)
    _results(t, src)
    return t
