"""The ground truth of a synthetic specimen (PREFIX_truth.h5, schema apt-cnn-hpc/truth/1).

  /ions/precipitate_id     int32 [n]   per ion in the POS file's record order: 0 = matrix,
                                       k >= 1 = precipitate k (by the atom's true position)
  /ions/is_background      bool  [n]   a random noise ion
  /ions/species            int16 [n]   true species (index into attr species_names), -1 background
  /precipitates/centre_nm  [k, 3], radius_nm [k], variant [k]; attrs structure, composition
  attrs: schema, matrix_composition, n_ions, instrument (JSON); /provenance
A file of this layout from any other generator is read the same (the schema attribute is then
optional: only the datasets above are required).
"""
import contextlib
import json
from dataclasses import dataclass

import h5py
import numpy as np

from ..errors import InputError
from ..fileutil import atomic_output
from ..provenance import write_h5_provenance
from .schema import check_schema, schema_name

KIND, VERSION = "truth", 1


ION_DATASETS = (("precipitate_id", np.int32), ("is_background", bool), ("species", np.int16))


class TruthWriter:
    """The per-ion datasets grow as chunks are appended (in POS order); finish() adds the
    precipitates, the attributes and the provenance."""

    def __init__(self, f: h5py.File, species_names):
        self.f = f
        g = f.create_group("ions")
        for name, dtype in ION_DATASETS:
            g.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(1 << 18,), compression="gzip")
        g.attrs["species_names"] = species_names
        g.attrs["doc"] = ("per ion, in POS order: precipitate_id 0 = matrix, k >= 1 = "
                          "precipitate k (by true position); is_background = random noise ion")
        self.n = 0

    def append(self, precipitate_id, is_background, species):
        g, k = self.f["ions"], len(precipitate_id)
        for (name, _), values in zip(ION_DATASETS, (precipitate_id, is_background, species)):
            g[name].resize((self.n + k,))
            g[name][self.n:] = values
        self.n += k

    def finish(self, spec: dict, record: dict):
        """spec: centres, radii, variants, precipitate_structure, precipitate_composition,
        matrix_composition, instrument (make_specimen's keys)."""
        f = self.f
        p = f.create_group("precipitates")
        p.create_dataset("centre_nm", data=spec["centres"])
        p.create_dataset("radius_nm", data=spec["radii"])
        p.create_dataset("variant", data=spec["variants"])
        p.attrs["structure"] = spec["precipitate_structure"]
        p.attrs["composition"] = str(spec["precipitate_composition"])
        f.attrs["matrix_composition"] = str(spec["matrix_composition"])
        f.attrs["n_ions"] = self.n
        f.attrs["instrument"] = json.dumps(spec.get("instrument", {}))
        f.attrs["schema"] = schema_name(KIND, VERSION)
        write_h5_provenance(f, record)


@contextlib.contextmanager
def truth_writer(path, species_names, overwrite: bool = True):
    """Yield a TruthWriter on a temporary file, renamed to `path` when the block succeeds."""
    with atomic_output(path, overwrite) as tmp, h5py.File(tmp, "w") as f:
        yield TruthWriter(f, species_names)


def write_truth(path, spec: dict, record: dict, overwrite: bool = True):
    with truth_writer(path, spec["species_names"], overwrite) as w:
        w.append(spec["precipitate_id"], spec["is_background"], spec["species_true"])
        w.finish(spec, record)


@dataclass
class Truth:
    precipitate_id: np.ndarray   # int64 [n]
    centre_nm: np.ndarray        # [k, 3]
    radius_nm: np.ndarray        # [k]
    instrument: dict             # the specimen's instrument settings, when recorded

    @property
    def inside(self) -> np.ndarray:
        return self.precipitate_id > 0

    def reconstructed_centres(self) -> np.ndarray:
        """The centres carried through the reconstruction's own distortions (curved planes, depth
        scale) when the truth records its instrument: where the precipitates appear in the data."""
        from ..crystal.detector import Instrument
        known = {k: v for k, v in self.instrument.items() if k in Instrument.__dataclass_fields__}
        return Instrument(**known).reconstruct(np.asarray(self.centre_nm, np.float64).reshape(-1, 3))


def read_truth(path, n_ions: int | None = None) -> Truth:
    """Per-ion precipitate id and the precipitates' centres and radii; `n_ions` (the scanned
    reconstruction's) must match when given."""
    try:
        f = h5py.File(path, "r")
    except (FileNotFoundError, OSError):
        raise InputError(path, "not found or not an HDF5 file") from None
    with f:
        for k in ("ions/precipitate_id", "precipitates/centre_nm", "precipitates/radius_nm"):
            if k not in f:
                raise InputError(path, f"not a ground-truth file (no /{k})")
        if "schema" in f.attrs:
            check_schema(f.attrs["schema"], path, KIND, (VERSION,))
        pid = f["ions/precipitate_id"][:].astype(np.int64)
        centre = f["precipitates/centre_nm"][:].reshape(-1, 3)
        radius = f["precipitates/radius_nm"][:]
        inst = json.loads(f.attrs.get("instrument", "{}"))
    if n_ions is not None and len(pid) != n_ions:
        raise InputError(path, f"holds {len(pid)} ions but the scan's reconstruction has {n_ions}")
    if len(radius) != len(centre) or (len(pid) and pid.max() > len(radius)):
        raise InputError(path, "precipitate ids and the precipitate table disagree")
    return Truth(pid, centre, radius, inst)
