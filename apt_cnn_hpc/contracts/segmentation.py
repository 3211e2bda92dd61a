"""The segmentation (schema apt-cnn-hpc/segmentation/2; 1 is read too): groups that `apt-cnn segment` adds to a
scan file (contracts/scan_file.py), one per recognition method, beside the scan's own groups.

  /precipitates                 attrs: schema, default (the method a user gets), methods (names),
                                config (JSON), comparison (JSON), provenance (JSON)
  /precipitates/<method>/       attrs: title, params (JSON)
      ion_precipitate_id  int32 [n_ions]  per ion of the scanned reconstruction, in its record order:
                                          0 matrix, k >= 1 row k-1 of the table, -1 undetermined;
                                          unranged ions too are labelled by where they lie
                                          (version 1: unranged ions 0)
      ion_probability     float32 [n_ions]  (methods with one) calibrated P(ion in L1_2)
      voxel_label         int32 [nx,ny,nz]  (voxel methods) precipitate of each scan voxel
      voxel_probability   float32 [nx,ny,nz] (methods with one) L1_2 fraction of each voxel
      voxel_l12_fraction  float32 [nx,ny,nz] share of each voxel's ranged ions this method calls L1_2
      the table, one row per precipitate: radius_nm, volume_nm3, centroid_nm [k,3], ion_count,
      ion_count_per_species [k,species] (attr species), composition_at_pct [k,elements] and
      composition_sd_at_pct (attr elements; counting error), touches_edge, n_voxels (voxel methods)
  /precipitates/uncertain       bool [nx,ny,nz] (ensemble scans): members disagree at the paper's rule
  /phase_sdm/<l12|fcc>/<pair>/  zx [dz, dx], z [dz]; attrs n_reference, dz_dx_edges_nm, z_edges_nm
"""
import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ..errors import InputError
from ..fileutil import atomic_h5
from .schema import check_schema, schema_name

KIND, VERSION = "segmentation", 2
GROUPS = ("precipitates", "phase_sdm")
PER_ION = ("ion_precipitate_id", "ion_probability")
GRIDS = ("voxel_label", "voxel_probability", "voxel_l12_fraction")
TABLE = ("radius_nm", "volume_nm3", "centroid_nm", "ion_count", "ion_count_per_species",
         "composition_at_pct", "composition_sd_at_pct", "touches_edge", "n_voxels")


@dataclass
class MethodRecord:
    """One method's result as stored: per-ion ids, optional grids and probabilities, the table."""
    title: str
    params: dict
    ion_precipitate_id: np.ndarray
    table: dict
    ion_probability: np.ndarray | None = None
    voxel_label: np.ndarray | None = None
    voxel_probability: np.ndarray | None = None
    voxel_l12_fraction: np.ndarray | None = None
    species: list = field(default_factory=list)
    elements: list = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.table["radius_nm"])


@dataclass
class Segmentation:
    default: str
    methods: dict                  # name -> MethodRecord
    config: dict
    comparison: dict
    provenance: dict
    uncertain: np.ndarray | None = None
    phase_sdm: dict = field(default_factory=dict)   # phase -> pair -> (zx, z, n_reference)
    sdm_edges: tuple | None = None                  # (dz_dx_edges_nm, z_edges_nm)


def is_segmented(path) -> bool:
    try:
        with h5py.File(path, "r") as f:
            return "precipitates" in f
    except OSError:
        return False     # missing or not HDF5: reading it says so


def write_segmentation(path, seg: Segmentation):
    """A new scan file: everything of the old one but an earlier segmentation, plus the new groups;
    renamed over the original only when complete, so the scan is never half-updated."""
    path = Path(path)
    with h5py.File(path, "r") as src, atomic_h5(path) as f:
        for name in src:
            if name not in GROUPS:
                src.copy(src[name], f, name=name)
        for k, v in src.attrs.items():
            f.attrs[k] = v
        p = f.create_group("precipitates")
        p.attrs.update({"schema": schema_name(KIND, VERSION), "default": seg.default,
                        "methods": list(seg.methods), "config": json.dumps(seg.config),
                        "comparison": json.dumps(seg.comparison),
                        "provenance": json.dumps(seg.provenance, default=str)})
        for name, rec in seg.methods.items():
            g = p.create_group(name)
            g.attrs["title"] = rec.title
            g.attrs["params"] = json.dumps(rec.params)
            for key in PER_ION + GRIDS:
                value = getattr(rec, key)
                if value is not None:
                    g.create_dataset(key, data=value, compression="gzip", compression_opts=1)
            for key in TABLE:
                if key in rec.table:
                    g.create_dataset(key, data=rec.table[key])
            g["ion_count_per_species"].attrs["species"] = list(rec.species)
            for key in ("composition_at_pct", "composition_sd_at_pct"):
                g[key].attrs["elements"] = list(rec.elements)
            g["radius_nm"].attrs["doc"] = "equivalent-sphere radius of volume_nm3"
            g["volume_nm3"].attrs["doc"] = "sum over the precipitate's ions of 1 / local ion density"
        if seg.uncertain is not None:
            p.create_dataset("uncertain", data=seg.uncertain, compression="gzip", compression_opts=1)
        for phase, pairs in seg.phase_sdm.items():
            for pair, (zx, z, n_ref) in pairs.items():
                g = f.create_group(f"phase_sdm/{phase}/{pair}")
                g.create_dataset("zx", data=zx)
                g.create_dataset("z", data=z)
                g.attrs["n_reference"] = n_ref
                g.attrs["dz_dx_edges_nm"], g.attrs["z_edges_nm"] = seg.sdm_edges


def read_segmentation(path, per_ion: bool = True) -> Segmentation:
    """The segmentation of a scan file; `per_ion=False` skips the per-ion arrays (large)."""
    try:
        f = h5py.File(path, "r")
    except (FileNotFoundError, OSError):
        raise InputError(path, "not found or not an HDF5 file") from None
    with f:
        if "precipitates" not in f:
            raise InputError(path, "not segmented yet: run `apt-cnn segment` first")
        p = f["precipitates"]
        check_schema(p.attrs.get("schema"), path, KIND, (1, VERSION))
        try:
            methods = {}
            for name in p.attrs["methods"]:
                g = p[name]
                methods[name] = MethodRecord(
                    str(g.attrs["title"]), json.loads(g.attrs["params"]),
                    g["ion_precipitate_id"][:] if per_ion else np.zeros(0, np.int32),
                    {k: g[k][:] for k in TABLE if k in g},
                    g["ion_probability"][:] if per_ion and "ion_probability" in g else None,
                    g["voxel_label"][:] if "voxel_label" in g else None,
                    g["voxel_probability"][:] if "voxel_probability" in g else None,
                    g["voxel_l12_fraction"][:] if "voxel_l12_fraction" in g else None,
                    list(g["ion_count_per_species"].attrs["species"]),
                    list(g["composition_at_pct"].attrs["elements"]))
            seg = Segmentation(str(p.attrs["default"]), methods, json.loads(p.attrs["config"]),
                               json.loads(p.attrs["comparison"]), json.loads(p.attrs["provenance"]),
                               p["uncertain"][:] if "uncertain" in p else None)
            if "phase_sdm" in f:
                for phase, pairs in f["phase_sdm"].items():
                    for pair, g in pairs.items():
                        seg.phase_sdm.setdefault(phase, {})[pair] = (g["zx"][:], g["z"][:],
                                                                      int(g.attrs["n_reference"]))
                        seg.sdm_edges = (g.attrs["dz_dx_edges_nm"][:], g.attrs["z_edges_nm"][:])
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(path, f"segmentation is incomplete or damaged ({exc})") from None
    return seg
