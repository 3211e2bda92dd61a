"""The analyses of a segmentation (schema apt-cnn-hpc/analyses/1): what `apt-cnn segment` adds to a
segmented scan file (contracts/segmentation.py) per recognition method (apt_cnn_hpc/analysis/).

  /analyses                     attrs: schema, methods (names), segmentation_sha256 (of the
                                segmentation's provenance: analyses of an earlier segmentation
                                are told apart), doc
  /analyses/<method>/           attrs: elements (order of every per-element axis), volume_method
      proxigram_edges_nm        float [b+1]  signed distance bin edges (-3..3 nm by 0.2 nm),
                                             negative in the matrix, positive inside precipitates
      proxigram_distance_nm     float [b]    bin centres
      proxigram_at_pct          float [b, e] composition of the ranged ions of each bin
      proxigram_at_pct_error    float [b, e] counting error sqrt(p (1 - p) / n_atoms), at.%
      proxigram_ion_count       int   [b]    ranged ions of each bin
      size_edges_nm             float [r+1]  equivalent-radius bins (0.25 nm)
      size_histogram            int   [r]    precipitates not touching the data's edge
      size_histogram_at_edge    int   [r]    precipitates touching it (radius a lower bound)
      count, count_at_edge, radius_mean_nm, radius_sd_nm (not at the edge), radius_mean_all_nm
      analysed_volume_nm3, convex_hull_volume_nm3, occupied_voxel_volume_nm3, determined_ion_share
      number_density_per_nm3, number_density_per_m3 and *_error (Poisson; edge ones count 1/2)
      volume_fraction, volume_fraction_error (bootstrap sd), volume_fraction_ci95 [2],
      bootstrap_resamples, bootstrap_seed
      matrix_at_pct, matrix_at_pct_error [e], matrix_atom_count           ions of id 0
      precipitate_at_pct, precipitate_at_pct_error [e], precipitate_atom_count   ions of id >= 1
Scalars are 0-d datasets; every composition is at.% over ranged ions, undetermined ions excluded.
"""
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ..errors import InputError
from ..fileutil import atomic_h5
from .schema import check_schema, schema_name

KIND, VERSION = "analyses", 1
GROUP = "analyses"
TEXT = ("elements", "volume_method")
REQUIRED = ("proxigram_distance_nm", "proxigram_at_pct", "proxigram_at_pct_error", "proxigram_ion_count",
            "size_edges_nm", "size_histogram", "size_histogram_at_edge", "count", "count_at_edge",
            "radius_mean_nm", "radius_sd_nm", "analysed_volume_nm3", "number_density_per_nm3",
            "number_density_per_nm3_error", "number_density_per_m3", "number_density_per_m3_error",
            "volume_fraction", "volume_fraction_error", "matrix_at_pct", "matrix_at_pct_error",
            "precipitate_at_pct", "precipitate_at_pct_error", "elements")


@dataclass
class Analyses:
    methods: dict                        # method -> {field: array, number or text}
    segmentation_sha256: str = ""
    doc: dict = field(default_factory=dict)

    def matches(self, segmentation) -> bool:
        """Whether these analyses were made from `segmentation` (not an earlier one)."""
        return self.segmentation_sha256 == segmentation_fingerprint(segmentation.provenance)


def segmentation_fingerprint(provenance: dict) -> str:
    """SHA-256 of a segmentation's provenance (as stored: JSON), which names its time and inputs."""
    norm = json.loads(json.dumps(provenance, default=str))
    return hashlib.sha256(json.dumps(norm, sort_keys=True).encode()).hexdigest()


def has_analyses(path) -> bool:
    try:
        with h5py.File(path, "r") as f:
            return GROUP in f
    except OSError:
        return False


def _write_method(g, results: dict):
    missing = [k for k in REQUIRED if k not in results]
    if missing:
        raise ValueError(f"analyses lack {missing}")
    for key, value in results.items():
        if key in TEXT:
            g.attrs[key] = list(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        else:
            g.create_dataset(key, data=np.asarray(value))


def _write(path, analyses: dict, fingerprint: str):
    """A new file: everything of the old one but /analyses, plus `analyses`; renamed over the
    original only when complete (as the segmentation is written), so it is never half-updated."""
    path = Path(path)
    with h5py.File(path, "r") as src, atomic_h5(path) as f:
        for name in src:
            if name != GROUP:
                src.copy(src[name], f, name=name)
        for k, v in src.attrs.items():
            f.attrs[k] = v
        a = f.create_group(GROUP)
        a.attrs.update({"schema": schema_name(KIND, VERSION), "methods": list(analyses),
                        "segmentation_sha256": fingerprint,
                        "doc": "per recognition method: proxigram, size distribution, number density, "
                               "volume fraction, phase compositions (apt_cnn_hpc/analysis)"})
        for method, results in analyses.items():
            _write_method(a.create_group(method), results)


def write_all_analyses(path, analyses: dict, segmentation_provenance: dict):
    """Replace /analyses by `analyses` ({method: results}) of the segmentation whose provenance
    is given (one rewrite of the file for all methods)."""
    _write(path, analyses, segmentation_fingerprint(segmentation_provenance))


def write_analyses(path, method: str, results: dict, segmentation_provenance: dict | None = None):
    """Add or replace one method's analyses of the file's segmentation (its provenance read from
    the file unless given), keeping the other methods' when they are of the same segmentation."""
    if segmentation_provenance is None:
        from .segmentation import read_segmentation
        segmentation_provenance = read_segmentation(path, per_ion=False).provenance
    fingerprint = segmentation_fingerprint(segmentation_provenance)
    try:
        old = read_analyses(path) if has_analyses(path) else Analyses({})
    except InputError:
        old = Analyses({})             # another version or damaged: replaced
    kept = old.methods if old.segmentation_sha256 == fingerprint else {}
    _write(path, {**kept, method: results}, fingerprint)


def read_analyses(path) -> Analyses:
    try:
        f = h5py.File(path, "r")
    except (FileNotFoundError, OSError):
        raise InputError(path, "not found or not an HDF5 file") from None
    with f:
        if GROUP not in f:
            raise InputError(path, "has no analyses: run `apt-cnn segment` (this version) first")
        a = f[GROUP]
        check_schema(a.attrs.get("schema"), path, KIND, (VERSION,))
        try:
            methods = {}
            for name in a.attrs["methods"]:
                g = a[name]
                res = {k: (v[()].item() if v.ndim == 0 else v[:]) for k, v in g.items()}
                for k in TEXT:
                    if k in g.attrs:
                        v = g.attrs[k]
                        res[k] = [str(x) for x in v] if isinstance(v, np.ndarray) else str(v)
                missing = [k for k in REQUIRED if k not in res]
                if missing:
                    raise KeyError(f"{name} lacks {missing}")
                methods[str(name)] = res
            return Analyses(methods, str(a.attrs["segmentation_sha256"]), {"doc": str(a.attrs.get("doc", ""))})
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(path, f"analyses are incomplete or damaged ({exc})") from None
